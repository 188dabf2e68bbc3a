package verdict.exceptions_test

import data.verdict.testing as t

# A tier-2 release that fails only REL-004 (a license not on the allowlist).
release := object.union(data.verdict.release_test.base, {"resource": {"properties": {
	"licenses": ["Apache-2.0", "CC-BY-NC-4.0"],
}}})

waiver := {
	"id": "exc_01JREL004",
	"control": "REL-004",
	"resource_id": "support-llm@3.2.0",
	"expires_at": "2026-12-01T00:00:00Z",
	"approved": true,
	"reason": "legal review of CC-BY-NC in progress",
}

test_release_without_exception_denied if t.denied(release, "REL-004")

test_waived_allows if {
	r := t.decision(release) with data.verdict_data.exceptions as [waiver]
	r == {"allow": true, "violations": [], "obligations": [], "exceptions": ["exc_01JREL004"]}
}

test_expired_denies if {
	r := t.decision(object.union(release, {"now": "2026-12-01T00:00:00Z"})) with data.verdict_data.exceptions as [waiver]
	r.allow == false
	r.exceptions == []
	r.violations[0].control == "REL-004"
}

test_unapproved_denies if {
	t.denied(release, "REL-004") with data.verdict_data.exceptions as [object.union(waiver, {"approved": false})]
	t.denied(release, "REL-004") with data.verdict_data.exceptions as [object.union(waiver, {"approved": "true"})]
}

test_other_resource_denies if {
	t.denied(release, "REL-004") with data.verdict_data.exceptions as [object.union(waiver, {"resource_id": "other@1"})]
}

test_other_control_not_waived if {
	inp := object.union(release, {"resource": {"properties": {"lineage": {"training_run": ""}}}})
	r := t.decision(inp) with data.verdict_data.exceptions as [waiver]
	r.allow == false
	[v.control | some v in r.violations] == ["REL-005"]
	r.exceptions == ["exc_01JREL004"]
}

test_blanket_waiver_ignored if {
	blanket := json.remove(waiver, ["resource_id"])
	t.denied(release, "REL-004") with data.verdict_data.exceptions as [blanket]
}

test_subject_and_action_scoping if {
	by_subject := object.union(json.remove(waiver, ["resource_id"]), {"subject_id": "deploy-pipeline", "action": "release.deploy"})
	t.allowed(release) with data.verdict_data.exceptions as [by_subject]
	wrong_action := object.union(waiver, {"action": "tool.call"})
	t.denied(release, "REL-004") with data.verdict_data.exceptions as [wrong_action]
	wrong_subject := object.union(waiver, {"subject_id": "someone-else"})
	t.denied(release, "REL-004") with data.verdict_data.exceptions as [wrong_subject]
}

test_malformed_exceptions_ignored if {
	every e in [
		object.union(waiver, {"expires_at": "never"}),
		object.union(waiver, {"expires_at": null}),
		object.union(waiver, {"id": 1}),
		object.union(waiver, {"control": ["REL-004"]}),
		"exc_01JREL004",
	] {
		t.denied(release, "REL-004") with data.verdict_data.exceptions as [e]
	}
	t.denied(release, "REL-004") with data.verdict_data.exceptions as {"a": waiver}
}

test_default_deny_and_input_001_not_waivable if {
	inp := object.union(release, {"action": {"name": "release.rollback"}})
	ex := [
		object.union(waiver, {"id": "e1", "control": "DEFAULT-DENY"}),
		object.union(waiver, {"id": "e2", "control": "INPUT-001"}),
	]
	t.denied(inp, "DEFAULT-DENY") with data.verdict_data.exceptions as ex
	t.denied(object.union(release, {"now": "soon"}), "INPUT-001") with data.verdict_data.exceptions as ex
}

test_waived_obligation_dropped if {
	inp := object.union(data.verdict.tool_test.base, {"resource": {"properties": {"risk": "high"}}})
	e := {"id": "exc_t3", "control": "TOOL-003", "subject_id": "code-agent", "resource_id": "read_file", "expires_at": "2026-11-27T00:00:00Z", "approved": true}
	r := t.decision(inp) with data.verdict_data.exceptions as [e]
	r == {"allow": true, "violations": [], "obligations": [], "exceptions": ["exc_t3"]}
}

test_multiple_exceptions_sorted if {
	inp := object.union(release, {"resource": {"properties": {"lineage": {"training_run": ""}}}})
	e2 := object.union(waiver, {"id": "exc_b", "control": "REL-005"})
	e1 := object.union(waiver, {"id": "exc_a"})
	r := t.decision(inp) with data.verdict_data.exceptions as [e2, e1, object.union(waiver, {"id": "exc_unused", "control": "REL-001"})]
	r.allow == true
	r.exceptions == ["exc_a", "exc_b"]
}
