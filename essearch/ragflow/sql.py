"""RAGFlow's text-to-SQL hook: token fields compared with `=`/`like` become full-text MATCHes."""

from __future__ import annotations

import re

TOKEN_COMPARISON = re.compile(r" ([a-z_]+_l?tks)( like | ?= ?)'([^']+)'")


def rewrite_sql(sql: str) -> str:
    """`content_ltks = 'foo bar'` -> `MATCH(content_ltks, 'foo bar', 'operator=OR;...')`.

    RAGFlow tokenises the value with its own tokenizer first; here the value is lower-cased and
    whitespace-normalised (the `*_tks` fields are whitespace-analysed)."""
    sql = re.sub(r"[ `]+", " ", sql).replace("%", "")
    replacements = []
    for match in TOKEN_COMPARISON.finditer(sql):
        fld, op, value = match.groups()
        tokens = " ".join(value.lower().split())
        replacements.append(
            (
                f"{fld}{op}'{value}'",
                f" MATCH({fld}, '{tokens}', 'operator=OR;minimum_should_match=30%') ",
            )
        )
    for old, new in replacements:
        sql = sql.replace(old, new, 1)
    return sql
