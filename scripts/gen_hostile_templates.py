#!/usr/bin/env python3
"""Writes hostile Jinja2 chat templates (issue 20, items 2 and 3) for the hostile-model corpus.

Each case is <out>/<name>.jinja, and <out>/manifest.json maps every name to text its error
message must contain (the budget of a LimitError: "expression depth", "loop iterations", ...; or
the RenderError of checked arithmetic) or to null for templates that must render (a deep value
that is only built and destroyed).
tests/tokenizer/jinja_hostile_test.cc runs the same cases in-process; this script feeds front-end
tests (a model file or tokenizer_config.json carrying the template, run under RLIMIT_AS).

    scripts/gen_hostile_templates.py OUT_DIR [--size N]   (N scales chain lengths, default 20000)
"""
import argparse
import json
import os


def cases(n):
    deep = 500000
    yield "binary_chain", "{{ 1" + " + 1" * n + " }}", "expression depth"
    yield "concat_chain", "{{ 'a'" + " ~ 'a'" * n + " }}", "expression depth"
    yield "and_chain", "{{ x" + " and x" * n + " }}", "expression depth"
    yield "or_chain", "{{ x" + " or x" * n + " }}", "expression depth"
    yield "attribute_chain", "{{ x" + ".a" * n + " }}", "expression depth"
    yield "index_chain", "{{ x" + "[0]" * n + " }}", "expression depth"
    yield "filter_chain", "{{ 'a'" + " | upper" * n + " }}", "expression depth"
    yield "call_chain", "{{ x" + "()" * n + " }}", "expression depth"
    yield "nested_lists", "{{ " + "[" * deep + "]" * deep + " }}", "expression"
    yield "nested_dicts", "{{ " + "{'a': " * deep + "1" + "}" * deep + " }}", "expression"
    yield "nested_parens", "{{ " + "(" * deep + "1" + ")" * deep + " }}", "expression"
    yield "nested_ifs", "{% if true %}" * n + "{% endif %}" * n, "block nesting"
    yield "nested_loops", ("{% for a in range(2000) %}{% for b in range(2000) %}{% for c in range(2000) %}"
                           "{% endfor %}{% endfor %}{% endfor %}"), "loop iterations"
    yield "exponential_macro", ("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
                                "{% endmacro %}{{ f(60) }}"), "evaluation steps"
    yield "output_flood", "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "output size"
    yield "string_repeat", "{{ 'x' * 10**10 }}", "string size"
    yield "string_doubling", ("{% set ns = namespace(s='x') %}{% for i in range(100) %}"
                              "{% set ns.s = ns.s ~ ns.s %}{% endfor %}"), "string size"
    yield "list_repeat", "{{ [1] * 10**9 }}", "list size"
    yield "center", "{{ 'x' | center(10**9) }}", "string size"
    yield "indent", "{{ 'x\ny' | indent(10**9) }}", "string size"
    yield "batch", "{{ [1] | batch(10**9, 0) | list }}", "list size"
    yield "join", "{{ (['x' * 10**6] * 100) | join }}", "string size"
    yield "split", "{{ ('a,' * 10**7).split(',') | length }}", "list size"
    yield "unique", "{{ range(100000) | unique | length }}", "evaluation steps"
    yield "map_recursion", "{{ ['a'] | map(" + ", ".join(["'map'"] * n) + ", 'upper') | list }}", "filter nesting"
    yield "deep_value", ("{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% for j in range(5) %}"
                         "{% set ns.x = [ns.x] %}{% endfor %}{% endfor %}done"), None
    yield "deep_value_printed", ("{% set ns = namespace(x=[]) %}{% for i in range(2000) %}"
                                 "{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}"), "value nesting"
    yield "self_reference", "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", "value nesting"
    yield "range_overflow", "{{ range(-9223372036854775807 - 1, 9223372036854775807) | length }}", "Range too big"
    yield "pow_overflow", "{{ 3 ** 1000 }}", "integer overflow"
    yield "neg_overflow", "{{ -(-9223372036854775807 - 1) }}", "integer overflow"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=20000)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    manifest = {}
    for name, source, budget in cases(args.size):
        with open(os.path.join(args.out, name + ".jinja"), "w", encoding="utf-8") as f:
            f.write(source)
        manifest[name] = budget
    with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    print(f"{len(manifest)} hostile templates in {args.out}")


if __name__ == "__main__":
    main()
