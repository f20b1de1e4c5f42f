"""Prompt versions: named parts in TOML files (built in) or the store (your edits), addressed as
name@version, immutable once saved; the default version and an A/B split between versions.

refs      parse "grounded@2", "grounded", the old "grounded-v2"
parts     the named parts of one version and the template they render to
files     TOML in and out (the built-in files, `dari prompt create --file`, `show --toml`)
builtin   the versions shipped in defaults/
store     versions and choices kept in the SQLite store
split     the A/B split: arms, shares, a stable arm per key
text      the parts as plain text, for `dari prompt show` and `diff`
registry  all of the above behind one object the pipeline asks for its template
"""
