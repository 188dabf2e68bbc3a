# Time-bound exceptions (waivers)
# Waivers come from two places: the ones the PDP stores (POST /v1/exceptions, four-eyes approved),
# which the decision service attaches as input.grants.exceptions to every decision it makes, and the
# ones a bundle ships in data.verdict_data.exceptions. On an id clash the stored waiver wins: a
# bundle entry whose id equals a stored one is ignored. An exception waives the violations of one
# control for the subject and/or resource (and optionally action) it names, while input.now is
# before its expires_at. Unwaivable controls (data.verdict_data.controls[c].waivable == false, and
# always DEFAULT-DENY and INPUT-001) cannot be waived; an exception naming neither subject_id nor
# resource_id (a blanket waiver) is ignored. Waived violations stay in the result, marked waived_by.
package verdict.exceptions

import data.verdict.lib
import data.verdict.lib.time

stored := input.grants.exceptions if is_array(input.grants.exceptions)

else := []

stored_ids := {e.id | some e in stored; is_object(e); is_string(e.id)}

bundled := data.verdict_data.exceptions if is_array(data.verdict_data.exceptions)

else := []

candidates contains e if {
	some e in stored
}

candidates contains e if {
	some e in bundled
	not clashes(e)
}

clashes(e) if {
	is_object(e)
	e.id in stored_ids
}

# active: exceptions that are approved, unexpired at input.now and scoped to this request.
active contains e if {
	some e in candidates
	is_object(e)
	lib.non_empty_string(e.id)
	lib.non_empty_string(e.control)
	waivable(e.control)
	e.approved == true
	expires_ns(e) > lib.now
	scoped(e)
	matches(e, "subject_id", input.subject.id)
	matches(e, "resource_id", input.resource.id)
	matches(e, "action", input.action.name)
}

# waivable: not one of the always-unwaivable controls, and not marked unwaivable in the catalog.
waivable(control) if {
	not control in lib.unwaivable
	not catalog_unwaivable(control)
}

catalog_unwaivable(control) if data.verdict_data.controls[control].waivable == false

scoped(e) if object.get(e, "subject_id", null) != null

scoped(e) if object.get(e, "resource_id", null) != null

matches(e, key, _) if object.get(e, key, null) == null

matches(e, key, actual) if {
	expected := object.get(e, key, null)
	expected != null
	expected == actual
}

# waiver_of(control): the id of the active waiver that waives control (the least id when several do).
waiver_of(control) := min({e.id | some e in active; e.control == control})

# decide turns raw violations and obligations into the result contract:
#   {"allow", "violations", "obligations", "exceptions"}, arrays sorted deterministically.
# Waived violations stay in "violations" with "waived_by": <exception id>; allow is true when
# every violation is waived.
decide(raw, obligations) := decide_with(raw, obligations, set())

# decide_with also lists the ids of the stored human approvals that satisfied a control (only when
# there are some: the "approvals" key is optional in the result contract).
decide_with(raw, obligations, approvals) := object.union(base, extra) if {
	waived := {v |
		some v in raw
		waivable(v.control)
		some e in active
		e.control == v.control
	}
	remaining := raw - waived
	marked := {object.union(v, {"waived_by": waiver_of(v.control)}) | some v in waived}
	applied := {waiver_of(v.control) | some v in waived}
	open_controls := {v.control | some v in remaining}
	kept := {o | some o in obligations; o.control in open_controls}
	base := {
		"allow": count(remaining) == 0,
		"violations": sort_violations(remaining | marked),
		"obligations": sort_obligations(kept),
		"exceptions": sort(applied),
	}
	extra := approvals_field(approvals)
}

approvals_field(approvals) := {} if count(approvals) == 0

approvals_field(approvals) := {"approvals": sort(approvals)} if count(approvals) > 0

violation_key(v) := concat("|", [v.control, v.message, v.severity, object.get(v, "waived_by", "")])

obligation_key(o) := concat("|", [o.control, o.type, o.reason])

# Sorting by a string key (not by object comparison) keeps the order identical in OPA and in wasm.
sort_violations(vs) := [v |
	some k in sort({violation_key(v) | some v in vs})
	some v in vs
	violation_key(v) == k
]

sort_obligations(os) := [o |
	some k in sort({obligation_key(o) | some o in os})
	some o in os
	obligation_key(o) == k
]

# deny_out_of_scope: the result for a request no policy handles.
deny_out_of_scope := decide({lib.default_deny} | lib.envelope_violations, set())

# expires_ns: a waiver's expiry in nanoseconds: the `expires_at_ns` Verdict's server attaches to each
# stored waiver (the same instant as `expires_at`) when present, else `expires_at` parsed.
expires_ns(e) := e.expires_at_ns if is_number(e.expires_at_ns)

else := time.ns(e.expires_at)
