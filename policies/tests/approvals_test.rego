package verdict.approvals_test

import data.verdict.testing as t

# A high-risk call of read_file by code-agent for user:42: TOOL-003 asks for a human approval.
high := object.union(data.verdict.tool_test.base, {
	"subject": {"properties": {"on_behalf_of": "user:42"}},
	"resource": {"properties": {"risk": "high"}},
})

digest := "5f1c0e7a0d8b9c2e4f6a1b3c5d7e9f00112233445566778899aabbccddeeff00"

stored := {
	"id": "apr_1",
	"state": "granted",
	"agent": "code-agent",
	"on_behalf_of": "user:42",
	"tool": "read_file",
	"arguments_digest": digest,
	"expires_at": "2026-11-26T12:15:00Z",
	"uses": 0,
	"max_uses": 1,
	"granted_by": "alice@example.com",
}

with_approval(a) := object.union(high, {"grants": {"approval": a, "arguments_digest": digest}})

test_stored_approval_allows_and_is_listed if {
	r := t.decision(with_approval(stored))
	r.allow == true
	r.violations == []
	r.approvals == ["apr_1"]
}

test_no_approval_means_obligation_and_no_approvals_field if {
	r := t.decision(high)
	r.allow == false
	some o in r.obligations
	o.type == "human_approval"
	not r.approvals
}

test_approval_for_other_binding_denied if {
	t.denied(with_approval(object.union(stored, {"tool": "shell"})), "TOOL-003")
	t.denied(with_approval(object.union(stored, {"agent": "support-bot"})), "TOOL-003")
	t.denied(with_approval(object.union(stored, {"on_behalf_of": "user:7"})), "TOOL-003")
	t.denied(with_approval(object.union(stored, {"on_behalf_of": null})), "TOOL-003")
	t.denied(with_approval(object.union(stored, {"arguments_digest": "00"})), "TOOL-003")

	# Other arguments: the service attaches the digest of the request's arguments, which differs.
	t.denied(object.union(high, {"grants": {"approval": stored, "arguments_digest": "ff"}}), "TOOL-003")
	t.denied(object.union(high, {"grants": {"approval": stored}}), "TOOL-003")
}

test_approval_expiry_at_now if {
	t.decision(object.union(with_approval(stored), {"now": "2026-11-26T12:14:59Z"})).allow
	t.denied(object.union(with_approval(stored), {"now": "2026-11-26T12:15:00Z"}), "TOOL-003")
}

test_used_up_or_ungranted_approval_denied if {
	t.denied(with_approval(object.union(stored, {"uses": 1})), "TOOL-003")
	t.denied(with_approval(object.union(stored, {"state": "pending"})), "TOOL-003")
	t.denied(with_approval(object.union(stored, {"state": "denied"})), "TOOL-003")
	t.denied(with_approval(object.union(stored, {"uses": "0"})), "TOOL-003")
}

test_self_granted_approval_denied if {
	t.denied(with_approval(object.union(stored, {"granted_by": " Code-Agent "})), "TOOL-003")
	t.denied(with_approval(object.union(stored, {"granted_by": ""})), "TOOL-003")
}

test_approval_without_on_behalf_of if {
	inp := json.remove(high, ["subject/properties/on_behalf_of"])
	a := object.union(stored, {"on_behalf_of": null})
	t.decision(object.union(inp, {"grants": {"approval": a, "arguments_digest": digest}})).allow
	t.denied(object.union(inp, {"grants": {"approval": stored, "arguments_digest": digest}}), "TOOL-003")
}

test_approval_satisfies_tool_002 if {
	inp := object.union(data.verdict.tool_test.base, {
		"subject": {"properties": {"on_behalf_of": "user:42"}},
		"resource": {"id": "write_file", "properties": {"arguments": {"path": "/workspace/a"}}},
		"context": {"session": {"untrusted_content": true}},
	})
	t.denied(inp, "TOOL-002")
	a := object.union(stored, {"tool": "write_file"})
	r := t.decision(object.union(inp, {"grants": {"approval": a, "arguments_digest": digest}}))
	r.allow
	r.approvals == ["apr_1"]
}

test_unneeded_approval_not_listed if {
	low := object.union(data.verdict.tool_test.base, {"subject": {"properties": {"on_behalf_of": "user:42"}}})
	r := t.decision(object.union(low, {"grants": {"approval": stored, "arguments_digest": digest}}))
	r.allow
	not r.approvals
}
