"""The committed JSON Schema files of leadflow's public Kafka contracts, and their generator.

python -m consumers.contracts.qualification --write-schemas   # regenerate schemas/
python -m consumers.contracts.qualification --check           # exit 1 when files are stale
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from consumers.contracts import engagement as engagement_record
from consumers.contracts import events_topic_schema, qualification

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def expected_files() -> dict[str, str]:
    """Path relative to ``schemas/`` → file text, exactly as the models generate it."""
    files = {
        f"qualification/v1/{name}": qualification.render_schema(document)
        for name, document in qualification.schema_documents().items()
    }
    files["engagement/v1/engagement.json"] = qualification.render_schema(
        engagement_record.schema_document()
    )
    files["events/v1/record.json"] = qualification.render_schema(
        events_topic_schema.schema_document()
    )
    return files


def stale_files(root: Path) -> list[str]:
    """Files that differ from the models, are missing, or are left over in a managed folder."""
    expected = expected_files()
    problems = [
        name
        for name, text in expected.items()
        if not (root / name).is_file() or (root / name).read_text(encoding="utf-8") != text
    ]
    for folder in {Path(name).parent for name in expected}:
        for path in sorted((root / folder).glob("*.json")):
            name = str(path.relative_to(root))
            if name not in expected:
                problems.append(name)
    return sorted(problems)


def write_files(root: Path) -> list[str]:
    """Write every schema file; remove files of a managed folder that no model generates."""
    expected = expected_files()
    written = []
    for name, text in expected.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(name)
    for name in stale_files(root):
        if name not in expected:
            (root / name).unlink()
            written.append(name)
    return sorted(written)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m consumers.contracts.qualification",
        description="Generate or check the JSON Schema files of leadflow's Kafka contracts.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write-schemas", action="store_true", help="(re)write the files")
    action.add_argument("--check", action="store_true", help="exit 1 when a file is stale")
    parser.add_argument("--dir", type=Path, default=REPO_SCHEMAS, help="schemas folder")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.dir)
        for name in stale:
            sys.stderr.write(f"stale schema file: {args.dir / name}\n")
        return 1 if stale else 0
    for name in write_files(args.dir):
        sys.stdout.write(f"wrote {args.dir / name}\n")
    return 0
