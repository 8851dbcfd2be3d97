#include "cli/cli.hpp"

int main(int argc, char** argv) {
  return previewdb::cli::run(argc, argv);
}
