#!/usr/bin/env python3
"""Fails when the modules of a crate import each other in a cycle.

    python3 scripts/check-modules.py                  # every package of the workspace, and fuzz/
    python3 scripts/check-modules.py publisher site   # these package folders

A module may use modules of its own layer and of the layers below it, never above
(STYLE.md, "Layers and a map"); two modules that need each other share a third, lower
one. This checks that rule where it can be checked mechanically: that the graph of
module-to-module imports of every crate has no cycle.

Every target of a package is a crate (the library, each binary, test and bench);
`cargo metadata --no-deps` names their root files. From a root, `mod NAME;` leads to
`NAME.rs` or `NAME/mod.rs` (beside a crate root or a `mod.rs`, else in the folder
named after the declaring file, as rustc does; `#[path]` is honoured), and
`mod NAME { … }` is a module inline.

An edge A -> B means that module A names module B or an item of it: a `use` path
(trees such as `use crate::{b::{self, X}, c::*}` expanded) or a path anywhere in the
code, starting with `crate::`, `$crate::`, `super::`, `self::` or the name of one of
A's own submodules. A path names the module that defines what it reaches:
`crate::b::c::X` is an edge to `b::c` when `c` is a module of `b`, else to `b`; and
when the item was brought into that module by a `use` (a facade's `pub use
limits::Limit` makes `crate::Limit` an edge to `limits`), to where that `use` leads.
So:

- a module using its own submodule (`pub use http::Client;`) is an ordinary edge, not
  a cycle;
- a submodule using its parent's items (`use super::Transport;`) is an edge to the
  parent, so the two together are a cycle, as the rule means;
- declaring a module (`mod b;`) is not an edge, nor is `pub(in crate::b)`.

Not read: comments (doc links included: a link is not a dependency), string and
character literals, and the items of a module under `#[cfg(test)]` (a `mod tests`,
or any other), since tests may reach anywhere.

For each crate it prints `ok` and its number of modules, or its elementary cycles
(the shortest 100 when there are more) and every import that closes one (each
between two modules of one strongly connected component), with file, line and
path. Exits 1 when a crate has a cycle; 2 when one cannot be read (a `mod` without
its file, say), since a silent miss could hide a cycle.

Approximations: a path starting with a name a `use` brought into scope (`use
crate::a; … a::b::X`) counts as the `use`, an edge to `a` rather than `a::b`; a macro
counts for the paths written out in it; an item under another `cfg` counts.
scripts/check-modules-selftest.sh tests this script (CI runs both).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Packages outside the workspace that are checked too when no folder is given.
EXTRA_PACKAGES = ["fuzz"]
# At most this many cycles are listed per crate (a tangle of 20 modules can have
# thousands; the imports that close them are all listed anyway).
MAX_CYCLES = 100


# A module's path from the crate root: () for the root, ("a", "b") for `a::b`.
ModulePath = tuple[str, ...]


class CrateError(Exception):
    """A crate whose modules cannot all be read."""


# ---------------------------------------------------------------------------------
# Tokens


@dataclass
class Token:
    kind: str  # "ident", "punct", "literal" or "lifetime"
    text: str
    line: int


def tokenize(source: str) -> list[Token]:
    """The tokens of Rust `source`, without comments. Literals keep their text (only
    `#[path = "…"]` needs it) and never look like paths."""
    tokens: list[Token] = []
    i, line, n = 0, 1, len(source)

    def skip_string(start: int) -> int:
        """Index after the `"…"` whose opening quote is at `start`."""
        j = start + 1
        while j < n and source[j] != '"':
            j += 2 if source[j] == "\\" else 1
        return j + 1

    def skip_raw_string(start: int) -> int | None:
        """Index after the raw string `#…#"…"#…#` starting at `start` (after the
        `r`), or None when it is not one (a raw identifier such as `r#type`)."""
        j = start
        while j < n and source[j] == "#":
            j += 1
        if j >= n or source[j] != '"':
            return None
        closing = '"' + "#" * (j - start)
        end = source.find(closing, j + 1)
        return n if end < 0 else end + len(closing)

    while i < n:
        c = source[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end
        elif source.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if source.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif source.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            line += source.count("\n", i, j)
            i = j
        elif c == '"':
            end = skip_string(i)
            tokens.append(Token("literal", source[i:end], line))
            line += source.count("\n", i, end)
            i = end
        elif c == "'":
            # A character literal ('x', '\n', '\u{1F600}') or a lifetime or label.
            if i + 1 < n and source[i + 1] == "\\":
                end = source.find("'", i + 3) + 1
                tokens.append(Token("literal", source[i:end], line))
                i = end
            elif i + 2 < n and source[i + 2] == "'":
                tokens.append(Token("literal", source[i : i + 3], line))
                i += 3
            else:
                j = i + 1
                while j < n and (source[j].isalnum() or source[j] == "_"):
                    j += 1
                tokens.append(Token("lifetime", source[i:j], line))
                i = j
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            word = source[i:j]
            if word in ("r", "br", "cr") and j < n and source[j] in '#"':
                end = skip_raw_string(j)
                if end is not None:
                    tokens.append(Token("literal", source[i:end], line))
                    line += source.count("\n", i, end)
                    i = end
                    continue
                if word == "r":  # a raw identifier: r#type
                    k = j + 1
                    while k < n and (source[k].isalnum() or source[k] == "_"):
                        k += 1
                    tokens.append(Token("ident", source[j + 1 : k], line))
                    i = k
                    continue
            if word in ("b", "c") and j < n and source[j] == '"':
                end = skip_string(j)
                tokens.append(Token("literal", source[i:end], line))
                line += source.count("\n", i, end)
                i = end
                continue
            if word == "b" and j < n and source[j] == "'":
                end = source.find("'", j + 2 if source[j + 1] == "\\" else j + 1) + 1
                tokens.append(Token("literal", source[i:end], line))
                i = end
                continue
            tokens.append(Token("ident", word, line))
            i = j
        elif c.isdigit():
            j = i
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            tokens.append(Token("literal", source[i:j], line))
            i = j
        elif source.startswith("::", i):
            tokens.append(Token("punct", "::", line))
            i += 2
        else:
            tokens.append(Token("punct", c, line))
            i += 1
    return tokens


# ---------------------------------------------------------------------------------
# Modules


@dataclass
class Module:
    """A module: its path from the crate root (() for the root), the file it is
    in, and the tokens of its body (without its inline submodules)."""

    path: ModulePath
    file: Path
    tokens: list[Token] = field(default_factory=list)
    children: set[str] = field(default_factory=set)
    # The items it defines (`fn NAME`, `struct NAME`…), and the names its `use`
    # items bring in: NAME -> the path it stands for, and the paths of its globs.
    defines: set[str] = field(default_factory=set)
    bindings: dict[str, list[str]] = field(default_factory=dict)
    globs: list[list[str]] = field(default_factory=list)


CLOSING = {"(": ")", "[": "]", "{": "}"}


def matching(tokens: list[Token], start: int) -> int:
    """Index of the bracket closing the one at `start`."""
    opening = tokens[start].text
    depth = 0
    for k in range(start, len(tokens)):
        text = tokens[k].text if tokens[k].kind == "punct" else None
        if text == opening:
            depth += 1
        elif text == CLOSING[opening]:
            depth -= 1
            if depth == 0:
                return k
    return len(tokens) - 1


def item_end(tokens: list[Token], start: int) -> int:
    """Index of the last token of the item starting at `start`: its `;`, or the
    `}` closing its first block (`fn … { }`, `mod m { }`, `impl … { }`)."""
    k = start
    while k < len(tokens):
        token = tokens[k]
        if token.kind == "punct" and token.text == ";":
            return k
        if token.kind == "punct" and token.text in "([":
            k = matching(tokens, k) + 1
            continue
        if token.kind == "punct" and token.text == "{":
            end = matching(tokens, k)
            # `use a::{b, c};` continues after its braces.
            if tokens[start].text == "use" or (
                tokens[start].text == "pub" and any(t.text == "use" for t in tokens[start:k])
            ):
                k = end + 1
                continue
            return end
        k += 1
    return len(tokens) - 1


def attribute(tokens: list[Token], start: int) -> tuple[int, list[Token]] | None:
    """When an attribute `#[…]` or `#![…]` starts at `start`: the index of its `]`
    and the tokens inside."""
    if tokens[start].text != "#" or tokens[start].kind != "punct":
        return None
    k = start + 1
    if k < len(tokens) and tokens[k].text == "!":
        k += 1
    if k >= len(tokens) or tokens[k].text != "[":
        return None
    end = matching(tokens, k)
    return end, tokens[k + 1 : end]


def is_cfg_test(inside: list[Token]) -> bool:
    return [t.text for t in inside] == ["cfg", "(", "test", ")"]


def path_attribute(inside: list[Token]) -> str | None:
    texts = [t.text for t in inside]
    if len(texts) == 3 and texts[:2] == ["path", "="]:
        return texts[2].strip('"')
    return None


ITEM_KEYWORDS = {"fn", "struct", "enum", "union", "trait", "type", "const", "static"}


def defined_name(item: list[Token]) -> str | None:
    """The name an item defines (`pub const fn NAME`, `macro_rules! NAME`), if any."""
    for k, token in enumerate(item[:-1]):
        if token.kind == "punct" and token.text in "{(=;<:":
            return None
        if token.text == "macro_rules" and k + 2 < len(item):
            return item[k + 2].text
        if token.text in ITEM_KEYWORDS:
            rest = [t for t in item[k + 1 :] if t.text not in ITEM_KEYWORDS | {"mut"}]
            return rest[0].text if rest and rest[0].kind == "ident" else None
    return None


def read_crate(root: Path) -> dict[ModulePath, Module]:
    """Every module of the crate whose root file is `root`, by path. Below, a
    module's `child_dir` is the folder its `mod NAME;` declarations lead into."""
    modules: dict[ModulePath, Module] = {}

    def read_file(path: ModulePath, file: Path, child_dir: Path) -> None:
        try:
            source = file.read_text(encoding="utf-8")
        except OSError as error:
            raise CrateError(f"cannot read `{file}` (module `{display(path)}`): {error}")
        tokens = tokenize(source)
        # `#![cfg(test)]` at the top of a file makes the whole module test code.
        k = 0
        while k < len(tokens) and (found := attribute(tokens, k)) and tokens[k + 1].text == "!":
            if is_cfg_test(found[1]):
                return
            k = found[0] + 1
        read_body(path, file, child_dir, tokens, inline=False)

    def read_body(
        path: ModulePath, file: Path, child_dir: Path, tokens: list[Token], inline: bool
    ) -> None:
        module = Module(path, file)
        modules[path] = module
        k, test_only, custom_path = 0, False, None
        while k < len(tokens):
            found = attribute(tokens, k)
            if found:
                end, inside = found
                test_only |= is_cfg_test(inside)
                custom_path = path_attribute(inside) or custom_path
                k = end + 1
                continue
            # Visibility before `mod`: `pub`, `pub(crate)`, `pub(in …)`.
            j = k
            if tokens[j].text == "pub":
                j += 1
                if j < len(tokens) and tokens[j].text == "(":
                    j = matching(tokens, j) + 1
            is_mod = (
                j + 2 < len(tokens)
                and tokens[j].text == "mod"
                and tokens[j].kind == "ident"
                and tokens[j + 1].kind == "ident"
                and tokens[j + 2].text in (";", "{")
            )
            if is_mod:
                name = tokens[j + 1].text
                if tokens[j + 2].text == "{":
                    end = matching(tokens, j + 2)
                    if not test_only:
                        module.children.add(name)
                        read_body(
                            path + (name,), file, child_dir / name, tokens[j + 3 : end], inline=True
                        )
                    k = end + 1
                else:
                    if not test_only:
                        module.children.add(name)
                        declare(path + (name,), file, child_dir, custom_path, inline)
                    k = j + 3
                test_only, custom_path = False, None
                continue
            if test_only:
                k = item_end(tokens, k) + 1
                test_only, custom_path = False, None
                continue
            # Any other item: its tokens are this module's, up to its end (a nested
            # `mod` inside a function body stays part of this module).
            end = item_end(tokens, k)
            module.tokens.extend(tokens[k : end + 1])
            if tokens[j].text == "use":
                for segments, name, _ in use_paths(tokens, j + 1)[0]:
                    if name is None:
                        module.globs.append(segments)
                    else:
                        module.bindings[name] = segments
            elif (name := defined_name(tokens[j : end + 1])) is not None:
                module.defines.add(name)
            k = end + 1
            test_only, custom_path = False, None

    def declare(
        path: ModulePath, parent_file: Path, child_dir: Path, custom: str | None, inline: bool
    ) -> None:
        name = path[-1]
        if custom is not None:
            if inline:
                raise CrateError(
                    f"`{parent_file}`: #[path] inside an inline module is not supported"
                )
            file = parent_file.parent / custom
            read_file(path, file, file.parent / file.stem)
            return
        candidates = [child_dir / f"{name}.rs", child_dir / name / "mod.rs"]
        existing = [c for c in candidates if c.is_file()]
        if len(existing) != 1:
            what = "neither" if not existing else "both"
            raise CrateError(
                f"module `{display(path)}` declared in `{rel(parent_file)}`: {what} of "
                f"`{rel(candidates[0])}` and `{rel(candidates[1])}` exist"
            )
        file = existing[0]
        read_file(path, file, file.parent if file.name == "mod.rs" else file.parent / file.stem)

    read_file((), root, root.parent)
    return modules


# ---------------------------------------------------------------------------------
# Imports


@dataclass
class Edge:
    """Where a module first names another: the file, line and path written."""

    file: Path
    line: int
    path: str


# For each module, the modules it names, each with the first place it does.
Graph = dict[ModulePath, dict[ModulePath, Edge]]


def use_paths(
    tokens: list[Token], start: int
) -> tuple[list[tuple[list[str], str | None, int]], int]:
    """The paths of the `use` tree starting at `start` (after `use`), expanded, each
    with the name it brings in (None for a glob) and its line; and the index of the
    closing `;`."""
    paths: list[tuple[list[str], str | None, int]] = []

    def tree(k: int, prefix: list[str]) -> int:
        segments = list(prefix)
        while k < len(tokens):
            token = tokens[k]
            if token.text == "::":
                k += 1
            elif token.text == "{":
                end = matching(tokens, k)
                k += 1
                while k < end:
                    after = tree(k, segments)
                    k = after if after > k else k + 1
                    if k < end and tokens[k].text == ",":
                        k += 1
                return end + 1
            elif token.text == "*":
                paths.append((segments, None, token.line))
                return k + 1
            elif token.kind == "ident" or token.text == "$":
                if token.text == "$":  # $crate
                    k += 1
                    token = Token("ident", "crate", token.line)
                if token.text == "self" and segments:
                    pass  # `a::{self}` is `a`
                else:
                    segments = segments + [token.text]
                name = segments[-1]
                k += 1
                if k + 1 < len(tokens) and tokens[k].text == "as":
                    name = tokens[k + 1].text
                    k += 2
                if k >= len(tokens) or tokens[k].text != "::":
                    paths.append((segments, name, token.line))
                    return k
            else:
                return k
        return k

    k = start
    while k < len(tokens) and tokens[k].text != ";":
        before = k
        k = tree(k, [])
        if k < len(tokens) and tokens[k].text == ",":
            k += 1
        if k == before:
            k += 1
    return paths, k


def code_paths(module: Module) -> list[tuple[list[str], int]]:
    """Every path in the module's code (outside `use`) that starts with `crate`,
    `$crate`, `super`, `self` or a submodule's name, as segments, with its line."""
    tokens = module.tokens
    paths: list[tuple[list[str], int]] = []
    starts = {"crate", "super", "self"} | module.children
    k = 0
    while k < len(tokens):
        token = tokens[k]
        if token.kind == "ident" and token.text == "use":
            found, k = use_paths(tokens, k + 1)
            paths.extend((segments, line) for segments, _, line in found)
            continue
        previous = tokens[k - 1].text if k else ""
        dollar = token.text == "$" and k + 1 < len(tokens) and tokens[k + 1].text == "crate"
        if dollar:
            k += 1
            token = Token("ident", "crate", token.line)
        starts_path = (
            token.kind == "ident"
            and token.text in starts
            and previous not in ("::", ".")
            and k + 1 < len(tokens)
            and tokens[k + 1].text == "::"
        )
        # `pub(in crate::a)` restricts visibility; it imports nothing.
        in_visibility = previous == "in" and k >= 2 and tokens[k - 2].text == "("
        if not starts_path or in_visibility:
            k += 1
            continue
        segments = [token.text]
        line = token.line
        k += 1
        while (
            k + 1 < len(tokens) and tokens[k].text == "::" and tokens[k + 1].kind == "ident"
        ):
            segments.append(tokens[k + 1].text)
            k += 2
        paths.append((segments, line))
    return paths


def resolve(
    modules: dict[ModulePath, Module],
    here: ModulePath,
    segments: list[str],
    depth: int = 0,
) -> ModulePath | None:
    """The module that defines what `segments` names from module `here`: the deepest
    module the path walks through, or, when the item after it was brought there by a
    `use` (a re-export such as `pub use limits::Limit`), the module that `use` leads
    to. None for a path outside the crate (`std::…`, another crate)."""
    first = segments[0]
    if first == "crate":
        base, rest = (), segments[1:]
    elif first in ("super", "self"):
        base, rest = here, segments
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                if not base:
                    return None  # rustc refuses it
                base = base[:-1]
            rest = rest[1:]
    elif first in modules[here].children:
        base, rest = here, segments
    else:
        return None
    while rest and base + (rest[0],) in modules:
        base, rest = base + (rest[0],), rest[1:]
    if not rest or depth > 8:
        return base
    module, name = modules[base], rest[0]
    if name in module.defines:
        return base
    if name in module.bindings:
        return resolve(modules, base, module.bindings[name] + rest[1:], depth + 1)
    for glob in module.globs:
        target = resolve(modules, base, glob, depth + 1)
        if target is not None and (
            name in modules[target].defines
            or name in modules[target].bindings
            or target + (name,) in modules
        ):
            return resolve(modules, target, ["self"] + rest, depth + 1)
    return base


def import_graph(
    modules: dict[ModulePath, Module],
) -> Graph:
    """For each module, the modules it names, each with the first place it does."""
    graph: Graph = {path: {} for path in modules}
    for here, module in modules.items():
        for segments, line in code_paths(module):
            target = resolve(modules, here, segments)
            if target is None or target == here or target in graph[here]:
                continue
            graph[here][target] = Edge(module.file, line, "::".join(segments))
    return graph


# ---------------------------------------------------------------------------------
# Cycles


def reachable(graph: dict[ModulePath, list[ModulePath]], start: ModulePath) -> set:
    seen, todo = {start}, [start]
    while todo:
        for successor in graph[todo.pop()]:
            if successor not in seen:
                seen.add(successor)
                todo.append(successor)
    return seen


def cycles(graph: Graph) -> list[list[ModulePath]]:
    """The elementary cycles of `graph`, shortest first, each starting at its
    smallest module (Johnson's algorithm); at most MAX_CYCLES + 1 of them."""
    order = sorted(graph)
    found: list[list[ModulePath]] = []
    for index, start in enumerate(order):
        # The cycles whose smallest module is `start`: within the strongly connected
        # component of `start` among the modules from `start` on.
        allowed = set(order[index:])
        forward = {v: [w for w in sorted(graph[v]) if w in allowed] for v in allowed}
        backward: dict[ModulePath, list[ModulePath]] = {v: [] for v in allowed}
        for v, successors in forward.items():
            for w in successors:
                backward[w].append(v)
        component = reachable(forward, start) & reachable(backward, start)
        if len(component) < 2:
            continue
        blocked: set[ModulePath] = set()
        blocked_by: dict[ModulePath, set[ModulePath]] = {v: set() for v in component}
        path: list[ModulePath] = []

        def unblock(node: ModulePath) -> None:
            blocked.discard(node)
            for other in blocked_by[node]:
                if other in blocked:
                    unblock(other)
            blocked_by[node].clear()

        def circuit(node: ModulePath) -> bool:
            closed = False
            path.append(node)
            blocked.add(node)
            successors = [w for w in forward[node] if w in component]
            for successor in successors:
                if len(found) > MAX_CYCLES:
                    break
                if successor == start:
                    found.append(list(path))
                    closed = True
                elif successor not in blocked and circuit(successor):
                    closed = True
            if closed:
                unblock(node)
            else:
                for successor in successors:
                    blocked_by[successor].add(node)
            path.pop()
            return closed

        circuit(start)
        if len(found) > MAX_CYCLES:
            break
    found.sort(key=lambda cycle: (len(cycle), cycle))
    return found


def tangles(graph: Graph) -> list[set]:
    """The strongly connected components of more than one module. Every import
    between two modules of one of them lies on a cycle."""
    forward = {node: list(targets) for node, targets in graph.items()}
    backward: dict[ModulePath, list[ModulePath]] = {node: [] for node in graph}
    for node, targets in graph.items():
        for target in targets:
            backward[target].append(node)
    found: list[set] = []
    placed: set = set()
    for node in sorted(graph):
        if node not in placed:
            component = reachable(forward, node) & reachable(backward, node)
            placed |= component
            if len(component) > 1:
                found.append(component)
    return found


# ---------------------------------------------------------------------------------
# Report


def display(path: ModulePath) -> str:
    return "::".join(path) if path else "crate"


def rel(file: Path) -> str:
    try:
        return str(file.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(file)


def check_crate(label: str, root: Path) -> bool:
    """Checks one crate and prints what it found; whether it has no cycle."""
    modules = read_crate(root)
    graph = import_graph(modules)
    found = cycles(graph)
    if not found:
        count = f"{len(modules)} module{'s' if len(modules) > 1 else ''}"
        print(f"ok    {label} ({rel(root)}): {count}, no cycle")
        return True
    listed = found[:MAX_CYCLES]
    if len(found) > MAX_CYCLES:
        count = f"more than {MAX_CYCLES} module cycles, the {MAX_CYCLES} shortest"
    else:
        count = f"{len(found)} module cycle{'s' if len(found) > 1 else ''}"
    print(f"error {label} ({rel(root)}): {count}:")
    for cycle in listed:
        print("  " + " -> ".join(display(node) for node in cycle + [cycle[0]]))
    # Every import between two modules of one tangle lies on a cycle: these are the
    # imports to look at, even when not every cycle is listed.
    edges = []
    for component in tangles(graph):
        for source in sorted(component):
            for target, edge in sorted(graph[source].items()):
                if target in component:
                    edges.append((f"{display(source)} -> {display(target)}", edge))
    print("  the imports that make them:")
    width = max(len(arrow) for arrow, _ in edges)
    for arrow, edge in edges:
        print(f"    {arrow:<{width}}  {rel(edge.file)}:{edge.line}  `{edge.path}`")
    return False


def crates(package_dir: Path) -> list[tuple[str, Path]]:
    """Each target of the package in `package_dir`, as a label and a root file."""
    manifest = (package_dir / "Cargo.toml").resolve()
    if not manifest.is_file():
        raise CrateError(f"`{package_dir}` has no Cargo.toml")
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline",
             "--manifest-path", str(manifest)],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    found = []
    for package in metadata["packages"]:
        if Path(package["manifest_path"]).resolve() != manifest:
            continue
        for target in package["targets"]:
            kind = target["kind"][0]
            found.append((f"{package['name']} {kind} {target['name']}", Path(target["src_path"])))
    return found


def workspace_packages() -> list[Path]:
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline",
             "--manifest-path", str(REPO / "Cargo.toml")],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    members = set(metadata["workspace_members"])
    folders = [
        Path(package["manifest_path"]).parent
        for package in metadata["packages"]
        if package["id"] in members
    ]
    return folders + [REPO / extra for extra in EXTRA_PACKAGES]


def main(arguments: list[str]) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the output quietly
    if any(argument.startswith("-") for argument in arguments):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    folders = [Path(argument) for argument in arguments] or workspace_packages()
    clean = True
    try:
        for folder in folders:
            for label, root in crates(folder):
                clean &= check_crate(label, root)
    except (CrateError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", None) or ""
        print(f"error: {error}\n{detail}".rstrip(), file=sys.stderr)
        return 2
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
