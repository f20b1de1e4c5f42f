"""One reader per format family; each turns a file's bytes into blocks of normalised text."""
