"""The documentation speaks of the code, not of how it was made, and what it points at exists.

Checked files: README.md, CHANGELOG.md, every docs/*.md and every examples/results/**/NOTE.md. A process word —
the word for a working period and its plural, "issue <number>", "brief", "former default", "moved here" — fails the
test with file, line and word;
so does a link to a missing file or to a heading docs/EXPERIMENTS.md does not have. Each check has a negative control
that plants the fault and requires the checker to catch it.
"""
import glob
import os
import re
import unicodedata

import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))

PROCESS_WORDS = re.compile(r"\bsessions?\b|\bissue \d|\bbrief\b|\bformer defaults?\b|\bmoved here\b", re.IGNORECASE)


def doc_files():
    files = ["README.md", "CHANGELOG.md"] + sorted(glob.glob("docs/*.md", root_dir=ROOT))
    files += sorted(glob.glob("examples/results/**/NOTE.md", root_dir=ROOT, recursive=True))
    return [f for f in files if os.path.exists(os.path.join(ROOT, f))]


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def process_words(text, name="text"):
    """['name:line: word', …] for every process word in text."""
    return [f"{name}:{n}: {m.group(0)!r}" for n, line in enumerate(text.splitlines(), 1)
            for m in PROCESS_WORDS.finditer(line)]


def test_the_docs_exist():
    files = doc_files()
    for must in ("README.md", "CHANGELOG.md", "docs/METHOD.md", "docs/EXPERIMENTS.md", "docs/RESULTS.md"):
        assert must in files
    assert len([f for f in files if f.endswith("NOTE.md")]) >= 20


def test_no_process_words_in_the_docs():
    found = [hit for f in doc_files() for hit in process_words(read(f), f)]
    assert found == [], "process words:\n" + "\n".join(found)


PLANTED = "sess" + "ion"          # planted below, spelt in two parts so that no search of the tree finds it


@pytest.mark.parametrize("planted", [
    f"This is the default since {PLANTED} 13.",
    f"{PLANTED.capitalize()}s 14–15 measured it.",
    f"As {'iss' + 'ue'} 5 asks, the claims are tested.",
    "The brief says so.",
    "At the former default 0.002 it diverged.",
    "These runs were moved here unchanged.",
])
def test_negative_control_a_planted_process_word_is_caught(planted):
    text = read("README.md") + "\n" + planted + "\n"
    hits = process_words(text, "README.md")
    assert len(hits) == 1 and hits[0].startswith(f"README.md:{len(text.splitlines())}:")


def code_files():
    """Every Python file of the package, the examples and the tests but this one (whose controls plant the words)."""
    files = ["setup.py"] + [f for pattern in ("xiref/*.py", "examples/**/*.py", "tests/*.py")
                            for f in sorted(glob.glob(pattern, root_dir=ROOT, recursive=True))]
    return [f for f in files if os.path.basename(f) != "test_docs.py"]


def test_no_process_words_in_the_code():
    """Code, comments and docstrings describe the project too; pytest's fixture scope is its own word."""
    found = [hit for f in code_files() for hit in process_words(read(f).replace('scope="session"', ""), f)]
    assert len(code_files()) > 60 and found == [], "process words:\n" + "\n".join(found)


def test_words_that_only_look_alike_pass():
    assert process_words("a pytest fixture of scope 'module'; the issues tracker; briefly; formerly 0.01") == []


def github_anchor(heading):
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces → hyphens."""
    text = heading.strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(rel):
    return {github_anchor(line.lstrip("#")) for line in read(rel).splitlines() if line.startswith("#")}


LINK = re.compile(r"\]\(([^)\s]+)\)")


def broken_links(rel, text=None):
    """Relative links of rel (Markdown `](target)`) whose file, or whose heading anchor, does not exist."""
    text = read(rel) if text is None else text
    bad = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):                  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(ROOT, os.path.dirname(rel), path)) if path else os.path.join(ROOT, rel)
        if not os.path.exists(full):
            bad.append(f"{rel}: {target} (no such file)")
        elif anchor and full.endswith(".md") and anchor not in anchors(os.path.relpath(full, ROOT)):
            bad.append(f"{rel}: {target} (no such heading)")
    return bad


def test_every_relative_link_and_heading_anchor_exists():
    bad = [b for f in doc_files() for b in broken_links(f)]
    assert bad == [], "\n".join(bad)


def test_negative_control_a_missing_file_or_heading_is_caught():
    text = "[gone](EXPERIMENTS.md#e99-no-such-question) and [lost](NO_SUCH.md) and [ok](EXPERIMENTS.md#e1-the-score-function-baseline)"
    assert len(broken_links("docs/METHOD.md", text)) == 2


def test_github_anchor_keeps_greek_and_drops_punctuation():
    assert github_anchor(" E5. The critics' θ step") == "e5-the-critics-θ-step"
    assert github_anchor("E2. θ step, momentum and price on the teacher–student task") == \
        "e2-θ-step-momentum-and-price-on-the-teacherstudent-task"


# repository paths written in backticks or as plain words: examples/…, docs/…, xiref/…, tests/…
PATH = re.compile(r"(?<![\w/.])((?:examples|docs|xiref|tests)/[^\s`'\"()\[\],;|]*[^\s`'\"()\[\],;|.:])")


def missing_paths(text):
    """Repository paths named in text that do not exist (paths with placeholders or globs are skipped; an output
    prefix such as beta_front.py's --out passes when files <prefix>.<ext> exist)."""
    out = []
    for p in PATH.findall(text):
        if any(c in p for c in "<>{}*…") or p.endswith("/seed"):
            continue
        full = os.path.join(ROOT, p)
        if not os.path.exists(full) and not glob.glob(glob.escape(full) + ".*"):
            out.append(p)
    return out


def test_every_path_the_readme_and_docs_name_exists():
    bad = {f: missing_paths(read(f)) for f in ["README.md", "CHANGELOG.md", "docs/METHOD.md",
                                               "docs/EXPERIMENTS.md", "docs/RESULTS.md"]}
    assert {f: p for f, p in bad.items() if p} == {}


def test_negative_control_a_renamed_script_is_caught():
    assert missing_paths("run `python examples/campaign.py` then examples/experiments/campaign.py") == \
        ["examples/campaign.py"]
    # a prefix passes only with files behind it
    assert missing_paths("examples/results/HalfCheetah-v5_beta_front examples/results/HalfCheetah-v5_beta_frnt") == \
        ["examples/results/HalfCheetah-v5_beta_frnt"]


def test_readme_and_method_stay_short():
    assert len(read("README.md").splitlines()) <= 150
    assert len(read("docs/METHOD.md").splitlines()) <= 400


# ------------------------------------------------------------------ the README's commands parse
def readme_commands(text):
    """Every `python -m xiref …` command in the README's code blocks, as argv after `-m xiref`."""
    import shlex
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part.split("#")[0])
                if words[:3] == ["python", "-m", "xiref"]:
                    out.append(words[3:])
    return out


def refused_commands(commands):
    """The commands xiref's own argument parser refuses (a renamed or removed flag, a bad choice)."""
    from xiref.cli import build_parser
    bad = []
    for argv in commands:
        try:
            build_parser().parse_args(argv)
        except SystemExit:
            bad.append(" ".join(argv))
    return bad


def test_every_xiref_command_in_the_readme_parses(capsys):
    commands = readme_commands(read("README.md"))
    assert len(commands) >= 6 and any(c[0] == "train" and "--eps-xi-ofenet" in c for c in commands)
    assert refused_commands(commands) == []


def test_negative_control_a_renamed_flag_in_the_readme_is_caught(capsys):
    text = read("README.md").replace("--ofe-units", "--ofenet-units", 1)
    assert len(refused_commands(readme_commands(text))) == 1


def ci_mismatches(readme, ci):
    """What of the README's test command (the second line of its first code block: `install && test`) .ci/run
    does not do: CI installs what the README says and runs exactly its test command."""
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    install, test = block[1].split(" && ")
    ci_lines = [line.strip() for line in ci.splitlines()]
    wanted = [install.replace("pip install", "python -m pip install --quiet"), test]
    return [w for w in wanted if w not in ci_lines]


def test_ci_installs_and_runs_what_the_readme_says():
    assert ci_mismatches(read("README.md"), read(".ci/run")) == []


def test_negative_control_a_ci_without_the_readmes_extra_is_caught():
    ci = read(".ci/run").replace('".[test,cluster]"', '".[test]"')
    assert ci_mismatches(read("README.md"), ci) == ['python -m pip install --quiet -e ".[test,cluster]"']


# fields that do not reach a run's numbers (where it writes, how often it checkpoints) or that the run fills in at
# its start from --method and --env (config.json stores them resolved)
NOT_NUMBERS = {"out", "checkpoint_every", "gated", "ofenet", "target_dim"}


def quickstart_mismatches(text):
    """Fields in which the README's first `train` command differs from the committed quickstart run it claims to
    reproduce (examples/results/quickstart/seed0/config.json), NOT_NUMBERS aside."""
    import json
    from dataclasses import asdict, fields

    from xiref.cli import build_parser
    from xiref.config import TrainConfig, config_from_dict
    argv = next(c for c in readme_commands(text) if c[0] == "train")
    args = build_parser().parse_args(argv)
    readme = asdict(TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)}))
    with open(os.path.join(ROOT, "examples/results/quickstart/seed0/config.json")) as f:
        committed = asdict(config_from_dict(json.load(f)))
    return sorted(k for k in readme if k not in NOT_NUMBERS and readme[k] != committed[k])


def test_the_readme_quickstart_is_the_committed_run():
    assert quickstart_mismatches(read("README.md")) == []


def test_negative_control_a_changed_quickstart_flag_is_caught():
    assert quickstart_mismatches(read("README.md").replace("--steps 20000", "--steps 20001", 1)) == ["steps"]
