#!/usr/bin/env bash
# Keeps docs/architecture.md true to the tree (called by scripts/check-deps.sh in CI):
#   - the dependency section between the `BEGIN GENERATED dependencies` / `END GENERATED`
#     markers is generated from `cargo metadata` (what each crate's manifest declares)
#     and `cargo tree` (the workspace crates each one pulls in through normal dependencies);
#   - the crate table (one unbroken table) names every workspace crate exactly once;
#   - the module tables name every `src/**/*.rs` of every crate, and no file that is gone.
# Usage: scripts/architecture.sh [--check | --write]   (default --check; --write regenerates
# the dependency section in place; the crate and module tables are written by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:---check}
case $mode in --check | --write) ;; *) echo "usage: $0 [--check | --write]" >&2; exit 2 ;; esac
python3 - "$mode" <<'PY'
import json, pathlib, re, subprocess, sys

mode, doc_path = sys.argv[1], pathlib.Path("docs/architecture.md")
meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"], check=True, capture_output=True, text=True).stdout)
root = pathlib.Path(meta["workspace_root"])
members = set(meta["workspace_members"])
packages = sorted((p for p in meta["packages"] if p["id"] in members), key=lambda p: p["name"])
names = {p["name"] for p in packages}

def deps(package, kind):
    """Direct dependencies of `kind` (None = normal), optional ones marked."""
    out = {}
    for d in package["dependencies"]:
        if d["kind"] == kind:
            out[d["name"]] = out.get(d["name"], True) and d["optional"]
    return out

def closure(name):
    """Workspace crates `name` pulls in through normal dependencies, optional ones included,
    as `cargo tree` resolves them."""
    tree = subprocess.run(
        ["cargo", "tree", "-p", name, "-e", "normal", "--all-features", "--prefix", "none", "--format", "{p}", "--offline"],
        check=True, capture_output=True, text=True,
    ).stdout
    return {line.split()[0] for line in tree.splitlines() if line.strip()} & names - {name}

def cell(items):
    return ", ".join(items) if items else "—"

def show(dep, optional):
    return f"{dep} (optional)" if optional else dep

lines = [
    "| Crate | Workspace crates it depends on | Other crates it depends on | All workspace crates it pulls in | Dev-only workspace crates |",
    "|---|---|---|---|---|",
]
for p in packages:
    normal = deps(p, None)
    build = deps(p, "build")
    dev = deps(p, "dev")
    ours = [show(d, o) for d, o in sorted(normal.items()) if d in names]
    theirs = [show(d, o) for d, o in sorted(normal.items()) if d not in names]
    theirs += [f"{d} (build)" for d in sorted(build)]
    dev_ours = [d for d in sorted(dev) if d in names and d not in normal]
    name = p["name"]
    lines.append(f"| `{name}` | {cell(ours)} | {cell(theirs)} | {cell(sorted(closure(name)))} | {cell(dev_ours)} |")
generated = "\n".join(lines) + "\n"

text = doc_path.read_text()
begin = "<!-- BEGIN GENERATED dependencies: scripts/architecture.sh --write -->\n"
end = "<!-- END GENERATED dependencies -->\n"
if begin not in text or end not in text:
    sys.exit(f"{doc_path}: the generated dependency markers are missing")
head, rest = text.split(begin, 1)
current, tail = rest.split(end, 1)
if mode == "--write":
    doc_path.write_text(head + begin + generated + end + tail)
    print(f"{doc_path}: dependency section written")
    sys.exit(0)

problems = []
if current != generated:
    problems.append("the dependency section differs from cargo metadata and cargo tree; run scripts/architecture.sh --write")

# The crate table: the first table under "## Crates", unbroken, every workspace crate once.
crates_section = text.split("\n## Crates\n", 1)[1] if "\n## Crates\n" in text else ""
table = []
started = False
for line in crates_section.splitlines():
    if line.startswith("|"):
        started = True
        table.append(line)
    elif started:
        break
listed = [m.group(1) for row in table[2:] for m in [re.match(r"\|\s*`([^`]+)`", row)] if m]
for name in sorted(names):
    if listed.count(name) != 1:
        problems.append(f"the crate table must name `{name}` exactly once (it does {listed.count(name)} times; a blank line ends a table)")
for name in listed:
    if name not in names:
        problems.append(f"the crate table names `{name}`, which is not a workspace crate")

# The module tables: "### `<crate>` modules" followed by rows whose first cell is a path
# relative to the crate's src/.
for p in packages:
    name = p["name"]
    src = pathlib.Path(p["manifest_path"]).parent / "src"
    files = sorted(str(f.relative_to(src)) for f in src.rglob("*.rs"))
    heading = f"\n### `{name}` modules\n"
    if heading not in text:
        problems.append(f"no module table for `{name}` (a heading {heading.strip()!r})")
        continue
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    named = [m.group(1) for m in re.finditer(r"^\|\s*`([^`]+\.rs)`", section, re.M)]
    for f in files:
        if f not in named:
            problems.append(f"`{name}`: src/{f} is not in its module table")
    for f in named:
        if f not in files:
            problems.append(f"`{name}`: the module table names src/{f}, which does not exist")
for problem in problems:
    print(f"{doc_path}: {problem}")
if problems:
    sys.exit(1)
print(f"{doc_path}: matches cargo metadata, cargo tree and the source tree")
PY
