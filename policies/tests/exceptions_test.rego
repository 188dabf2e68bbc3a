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
	r.allow == true
	r.exceptions == ["exc_01JREL004"]
	r.obligations == []

	# The waived violation stays visible, marked with the waiver that waived it.
	count(r.violations) > 0
	every v in r.violations {
		v.control == "REL-004"
		v.waived_by == "exc_01JREL004"
	}
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
	[v.control | some v in r.violations; not v.waived_by] == ["REL-005"]
	{v.waived_by | some v in r.violations; v.control == "REL-004"} == {"exc_01JREL004"}
	r.exceptions == ["exc_01JREL004"]
}

test_blanket_waiver_ignored if {
	blanket := json.remove(waiver, ["resource_id"])
	t.denied(release, "REL-004") with data.verdict_data.exceptions as [blanket]
}

test_subject_and_action_scoping if {
	by_subject := object.union(json.remove(waiver, ["resource_id"]), {"subject_id": "deploy-pipeline", "action": "release.deploy"})
	t.decision(release).allow with data.verdict_data.exceptions as [by_subject]
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
	r == {
		"allow": true,
		"violations": [{"control": "TOOL-003", "message": "high-risk tool call without a valid human approval", "severity": "high", "waived_by": "exc_t3"}],
		"obligations": [],
		"exceptions": ["exc_t3"],
	}
}

test_multiple_exceptions_sorted if {
	inp := object.union(release, {"resource": {"properties": {"lineage": {"training_run": ""}}}})
	e2 := object.union(waiver, {"id": "exc_b", "control": "REL-005"})
	e1 := object.union(waiver, {"id": "exc_a"})
	r := t.decision(inp) with data.verdict_data.exceptions as [e2, e1, object.union(waiver, {"id": "exc_unused", "control": "REL-001"})]
	r.allow == true
	r.exceptions == ["exc_a", "exc_b"]
}

# Stored waivers (input.grants.exceptions, attached by the decision service) -------------------

stored := object.union(waiver, {"id": "exc_stored"})

test_stored_waiver_applies if {
	r := t.decision(object.union(release, {"grants": {"exceptions": [stored]}}))
	r.allow == true
	r.exceptions == ["exc_stored"]
	every v in r.violations {
		v.waived_by == "exc_stored"
	}
}

test_stored_waiver_expires_at_now if {
	# One nanosecond before expiry it applies; at expiry it no longer does, whatever was attached.
	before := object.union(release, {"now": "2026-11-30T23:59:59.999999999Z", "grants": {"exceptions": [stored]}})
	t.decision(before).allow
	at := object.union(release, {"now": "2026-12-01T00:00:00Z", "grants": {"exceptions": [stored]}})
	t.denied(at, "REL-004")
}

test_stored_waiver_scoping if {
	other := object.union(stored, {"resource_id": "other@1"})
	t.denied(object.union(release, {"grants": {"exceptions": [other]}}), "REL-004")
	blanket := json.remove(stored, ["resource_id"])
	t.denied(object.union(release, {"grants": {"exceptions": [blanket]}}), "REL-004")
}

test_stored_wins_on_id_clash if {
	# The bundle ships exc_stored too, but for another resource: the stored entry is the one used.
	bundled := object.union(stored, {"resource_id": "other@1"})
	r := t.decision(object.union(release, {"grants": {"exceptions": [stored]}})) with data.verdict_data.exceptions as [bundled]
	r.allow == true

	# And the other way round: a stored entry that does not apply hides the bundle's entry of that id.
	r2 := t.decision(object.union(release, {"grants": {"exceptions": [bundled]}})) with data.verdict_data.exceptions as [stored]
	r2.allow == false
}

test_bundle_and_stored_waivers_merge if {
	inp := object.union(release, {
		"resource": {"properties": {"lineage": {"training_run": ""}}},
		"grants": {"exceptions": [object.union(stored, {"control": "REL-005"})]},
	})
	r := t.decision(inp) with data.verdict_data.exceptions as [waiver]
	r.allow == true
	r.exceptions == ["exc_01JREL004", "exc_stored"]
}

test_catalog_unwaivable_control if {
	t.denied(object.union(release, {"grants": {"exceptions": [stored]}}), "REL-004") with data.verdict_data.controls["REL-004"].waivable as false
}

test_malformed_grants_ignored if {
	t.denied(object.union(release, {"grants": {"exceptions": {"a": stored}}}), "REL-004")
	t.denied(object.union(release, {"grants": "all"}), "REL-004")
	t.denied(object.union(release, {"grants": {"exceptions": [object.union(stored, {"approved": "yes"})]}}), "REL-004")
}

# The server's nanoseconds (input.now_ns, each stored waiver's expires_at_ns) -----------------------

test_server_nanoseconds_decide_expiry_when_present if {
	expiry := time.parse_rfc3339_ns(stored.expires_at)

	# The same instants as the strings: the same answers as without them.
	before := object.union(release, {"now": "2026-11-30T23:59:59.999999999Z", "now_ns": expiry - 1, "grants": {"exceptions": [object.union(stored, {"expires_at_ns": expiry})]}})
	t.decision(before).allow
	at := object.union(release, {"now": "2026-12-01T00:00:00Z", "now_ns": expiry, "grants": {"exceptions": [object.union(stored, {"expires_at_ns": expiry})]}})
	t.denied(at, "REL-004")

	# When present they are what the policy reads (the strings are not parsed again).
	t.denied(object.union(release, {"now_ns": expiry, "grants": {"exceptions": [stored]}}), "REL-004")
	t.denied(object.union(release, {"grants": {"exceptions": [object.union(stored, {"expires_at_ns": time.parse_rfc3339_ns(release.now)})]}}), "REL-004")

	# Anything but a number is ignored: the string is parsed as before.
	t.decision(object.union(release, {"now_ns": "0", "grants": {"exceptions": [object.union(stored, {"expires_at_ns": null})]}})).allow
}
