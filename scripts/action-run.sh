#!/usr/bin/env bash
# The GitHub action's run step (action.yml): `previewdb ci` (or, with the input command:
# safe-migrate, `previewdb safe-migrate`) with the inputs that are flags, read
# from INPUT_<NAME> variables (the step's env block); the other inputs reach previewdb as the
# PREVIEWDB_* / standard variables it reads itself. An empty input adds nothing, so previewdb's
# defaults and previewdb.json apply. PREVIEWDB_BIN: the installed binary (default: on PATH).
set -euo pipefail

# Inputs given as --name=VALUE when set.
value_flags=(migrations-path dir pr config)
# Inputs given as --name when 'true'.
switches=(force export-env dry-run refresh-source)

input() {
  local var="INPUT_${1//-/_}"
  var=${var^^}
  printf '%s' "${!var:-}"
}

command=${INPUT_COMMAND:-ci}
case "$command" in
  ci | safe-migrate) ;;
  *) echo "::error title=previewdb::input command must be 'ci' or 'safe-migrate', not '$command'" >&2; exit 2 ;;
esac
args=("$command")
for name in "${value_flags[@]}"; do
  v=$(input "$name")
  [ -n "$v" ] && args+=("--$name=$v")
done
for name in "${switches[@]}"; do
  v=$(input "$name")
  case "$v" in
    true) args+=("--$name") ;;
    false | "") ;;
    *) echo "::error title=previewdb::input $name must be 'true' or 'false', not '$v'" >&2; exit 2 ;;
  esac
done
exec "${PREVIEWDB_BIN:-previewdb}" "${args[@]}"
