"""The ingest command: input forms, output lines and dead letters."""

from __future__ import annotations

import io
import json

from streams.adapters.command import main
from streams.events import CALL_EVENTS, decode


def presence(envelope_id, new):
    return {"id": envelope_id, "detail": {
        "topicName": "v2.audits.entitytype.UserPresence.entityid.u-1",
        "eventBody": {"eventTime": f"2026-03-02T09:00:0{envelope_id[-1]}Z",
                      "propertyChanges": [{"property": "PRESENCE", "newValues": [new]}]}}}


def test_json_lines_with_bad_line_keeps_converting(tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([json.dumps(presence("p1", "Break")), "{not json", "", json.dumps(presence("p2", "On Queue"))]) + "\n")

    code = main(["--from", "genesys", str(path)])

    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    letters = [json.loads(line) for line in err.splitlines()]
    assert code == 1
    assert [e["state"] for e in events] == ["break", "available"]
    for line in out.splitlines():
        assert decode(CALL_EVENTS, line)[1] == []
    assert len(letters) == 1
    assert letters[0]["value"] == "{not json"
    assert letters[0]["error"].startswith("line 2 is not valid JSON (")
    assert sorted(letters[0]) == [
        "error", "key", "offset", "partition", "platform", "reason", "received_at", "source_topic", "value", "value_encoding",
    ]
    assert letters[0]["reason"] == "invalid_json"
    assert letters[0]["platform"] == "genesys"


def test_json_array_from_stdin(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps([presence("p1", "Meal"), presence("p2", "Offline")], indent=2)))

    code = main(["--from", "genesys", "-"])

    out, err = capsys.readouterr()
    assert code == 0
    assert err == ""
    assert [json.loads(line)["state"] for line in out.splitlines()] == ["break", "offline"]


def test_missing_input_file_is_usage_error(tmp_path, capsys):
    code = main(["--from", "twilio", str(tmp_path / "absent.json")])

    assert code == 2
    assert "cannot read" in capsys.readouterr().err


def test_flag_option_for_wrong_platform_is_usage_error(tmp_path, capsys):
    path = tmp_path / "in.json"
    path.write_text("{}")

    code = main(["--from", "twilio", str(path), "--rule-flag", "Abuse=abuse"])

    assert code == 2
    assert "apply to --from amazon-connect only" in capsys.readouterr().err
