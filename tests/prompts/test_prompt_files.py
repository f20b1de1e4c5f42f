"""Prompt files: TOML read strictly, written back to the same parts, errors that name the place."""

from __future__ import annotations

import pytest

from dari.errors import ConfigError, InputError
from dari.prompts.builtin import builtin_versions
from dari.prompts.files import read_parts, to_toml
from dari.prompts.parts import Parts, PromptVersion

COMPLETE = """
description = "short answers"
[en]
role = "You answer from sources."
directive = "Cite [n]."
dont_know = "I don't know."
demonstrations = []
[en.data]
source = "[{n}] {title}\\n{text}"
question = "Q: {question}"
"""


def test_builtin_versions_are_read_from_the_package_files() -> None:
    versions = builtin_versions()
    assert {"grounded@1", "grounded@2"} <= set(versions)
    v2 = versions["grounded@2"]
    assert v2.source == "builtin" and v2.langs == ("en", "ko") and "HaluEval" in v2.description
    assert v2.parts["en"].system.startswith(v2.parts["en"].role + "\n" + "Rules:")


@pytest.mark.parametrize("ref", ["grounded@1", "grounded@2"])
def test_toml_round_trips_the_parts(ref: str) -> None:
    version = builtin_versions()[ref]
    parts, description = read_parts(to_toml(version), "x.toml")
    assert parts == dict(version.parts) and description == version.description


def test_awkward_text_survives_the_round_trip() -> None:
    awkward = [
        'say "hi"',
        "\nstarts with a break",
        'ends "',
        'a """ b\n"',
        "tab\tand \\n",
        "\x01\n",
    ]
    parts = {
        "en": Parts(
            role=awkward[0],
            directive="\n".join(awkward),
            demonstrations=tuple((a, a) for a in awkward),
            source_line="[{n}]\n{text}",
            question_line="{question}",
            dont_know="no",
            output_format=awkward[3],
        )
    }
    version = PromptVersion("odd", 1, parts, "store")
    assert read_parts(to_toml(version), "odd.toml")[0] == parts


def test_a_complete_file_needs_no_base() -> None:
    parts, description = read_parts(COMPLETE, "mine.toml")
    assert description == "short answers" and parts["en"].output_format == ""
    assert parts["en"].system == "You answer from sources.\nCite [n]."


def test_parts_a_file_leaves_out_come_from_the_base() -> None:
    base = builtin_versions()["grounded@2"].parts
    parts, _ = read_parts('[ko]\noutput_format = "한 문장으로 답하세요."\n', "mine.toml", base)
    assert parts["en"] == base["en"]
    assert parts["ko"].directive == base["ko"].directive
    assert parts["ko"].system.endswith("\n한 문장으로 답하세요.")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[en\nrole = 1", r"mine\.toml is not valid TOML: .*line 1"),
        (
            COMPLETE.replace('directive = "Cite [n]."\n', ""),
            r"mine\.toml \[en\] has no 'directive'",
        ),
        (COMPLETE.replace("demonstrations = []\n", ""), "has no 'demonstrations'"),
        (COMPLETE.replace('role = "You answer from sources."', 'role = " "'), "'role' is empty"),
        (COMPLETE.replace("[en]", "[en]\nrule = 'x'"), "unknown part 'rule'"),
        (COMPLETE.replace("Q: {question}", "Q: {query}"), r"unknown placeholder \{query\}"),
        (
            COMPLETE.replace("Q: {question}", "Q:"),
            r"data.question lacks the placeholder \{question\}",
        ),
        (COMPLETE.replace("Q: {question}", "Q: {question"), "is not a valid format"),
        (COMPLETE.replace("demonstrations = []", 'demonstrations = ["x"]'), "not a user/assistant"),
        (COMPLETE.replace("[en", "[ko"), r"has no \[en\] table"),
        ("extra = 1\n" + COMPLETE, "unknown key 'extra'"),
        (COMPLETE + 'other = "x"\n', "'data' is not a table of source and question"),
        (COMPLETE.replace('"You answer from sources."', "3"), "role is not a string"),
    ],
)
def test_bad_files_are_input_errors_that_say_where(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        read_parts(text, "mine.toml")
    assert err.value.hint


def test_a_broken_builtin_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="built-in"):
        read_parts("[en]\nrole = 'x'\n", "the built-in prompt x@1.toml", error=ConfigError)
