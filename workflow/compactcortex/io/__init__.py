"""One module per on-disk format, each with its reader and its writer (and the checks that name the file)."""
