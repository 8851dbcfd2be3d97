# cmake -DBINARY=... -DNAME=previewdb-<v>-linux-x64 -DOUT=....tar.gz -DSOURCE_DIR=... -P
# Packs the portable binary (stripped) with the docs that tell how to use it. The archive is
# reproducible: sorted names, owner root, mtime of the epoch.
get_filename_component(_out_dir ${OUT} DIRECTORY)
set(_stage ${_out_dir}/stage)
file(REMOVE_RECURSE ${_stage})
file(MAKE_DIRECTORY ${_stage}/${NAME})
execute_process(COMMAND strip --strip-all -o ${_stage}/${NAME}/previewdb ${BINARY}
                COMMAND_ERROR_IS_FATAL ANY)
file(COPY ${SOURCE_DIR}/README.md ${SOURCE_DIR}/docs/PACKAGING.md DESTINATION ${_stage}/${NAME})
execute_process(COMMAND tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0
                        -czf ${OUT}.tmp ${NAME}
                WORKING_DIRECTORY ${_stage} COMMAND_ERROR_IS_FATAL ANY)
file(RENAME ${OUT}.tmp ${OUT})
file(REMOVE_RECURSE ${_stage})
