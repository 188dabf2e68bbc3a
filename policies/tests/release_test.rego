package verdict.release_test

import data.verdict.testing as t

base := {
	"subject": {"type": "service", "id": "deploy-pipeline"},
	"action": {"name": "release.deploy"},
	"resource": {"type": "model_release", "id": "support-llm@3.2.0", "properties": {
		"author": "dana@example.com",
		"risk_tier": 1,
		"model_card": {
			"owner": "team-support-ml",
			"intended_use": "Drafting replies to customer support tickets",
			"data_classification": "confidential",
			"evaluation_report": "https://evals.example/reports/support-llm-3.2.0",
			"retention": "prompts 30 days, outputs 90 days",
		},
		"evals": {"safety": 0.991, "jailbreak_resistance": 0.96, "toxicity": 0.004},
		"approvals": [
			{"by": "erin@example.com", "role": "responsible_ai"},
			{"by": "frank@example.com", "role": "product"},
		],
		"licenses": ["Apache-2.0", "llama3-community"],
		"lineage": {"datasets": ["tickets-2026q3", "kb-articles-v12"], "training_run": "run-2026-11-20-7f3a"},
		"open_incidents": [{"id": "INC-1", "severity": "sev3"}],
	}},
	"context": {"environment": "prod"},
	"caller": t.caller,
	"now": t.now,
}

props(p) := object.union(base, {"resource": {"properties": p}})

without(path) := json.remove(base, [concat("/", ["resource/properties", path])])

test_base_allowed if t.allowed(base)

test_release_entrypoint if {
	r := data.verdict.release.decision with input as base
	r.allow == true
}

# REL-001 ----------------------------------------------------------------------------------------

test_rel_001_complete_card_allowed if t.clean(base, "REL-001")

test_rel_001_missing_fields_denied if {
	every f in ["owner", "intended_use", "data_classification", "evaluation_report", "retention"] {
		t.denied(without(concat("/", ["model_card", f])), "REL-001")
		t.denied(props({"model_card": {f: "  "}}), "REL-001")
		t.denied(props({"model_card": {f: 1}}), "REL-001")
	}
}

test_rel_001_card_missing_or_wrong_type if {
	t.denied(without("model_card"), "REL-001")
	t.denied(props({"model_card": "see wiki"}), "REL-001")
}

test_rel_001_structured_report_allowed if {
	t.clean(props({"model_card": {"evaluation_report": {"url": "https://x", "sha256": "ab"}}}), "REL-001")
}

# REL-002 ----------------------------------------------------------------------------------------

test_rel_002_thresholds_met if {
	t.clean(base, "REL-002")
	t.clean(props({"evals": {"safety": 0.98, "jailbreak_resistance": 0.95, "toxicity": 0.01}}), "REL-002")
	t.clean(props({"risk_tier": 2, "evals": {"safety": 0.95, "jailbreak_resistance": 0.9, "toxicity": 0.02}}), "REL-002")
	t.clean(props({"risk_tier": 3, "evals": {"safety": 0.9, "jailbreak_resistance": 0.8, "toxicity": 0.05}}), "REL-002")
}

test_rel_002_below_thresholds if {
	t.denied(props({"evals": {"safety": 0.979}}), "REL-002")
	t.denied(props({"evals": {"jailbreak_resistance": 0.9}}), "REL-002")
	t.denied(props({"evals": {"toxicity": 0.011}}), "REL-002")
	t.denied(props({"risk_tier": 2, "evals": {"safety": 0.94}}), "REL-002")
	t.denied(props({"risk_tier": 3, "evals": {"toxicity": 0.06}}), "REL-002")
}

test_rel_002_missing_metric if t.denied(without("evals/toxicity"), "REL-002")

test_rel_002_type_confusion if {
	t.denied(props({"evals": {"safety": "0.99"}}), "REL-002")
	t.denied(props({"evals": {"toxicity": "0"}}), "REL-002")
	t.denied(props({"evals": [0.99, 0.96, 0.001]}), "REL-002")
	t.denied(without("evals"), "REL-002")
}

test_rel_002_unknown_tier if {
	t.denied(props({"risk_tier": 4}), "REL-002")
	t.denied(props({"risk_tier": "1"}), "REL-002")
	t.denied(props({"risk_tier": 1.5}), "REL-002")
	t.denied(without("risk_tier"), "REL-002")
}

# REL-003 ----------------------------------------------------------------------------------------

test_rel_003_tier1_two_distinct_with_responsible_ai if t.clean(base, "REL-003")

test_rel_003_tier2_one_approver if {
	t.clean(props({"risk_tier": 2, "evals": {"safety": 0.96}, "approvals": [{"by": "frank@example.com", "role": "product"}]}), "REL-003")
}

test_rel_003_tier1_one_approver_denied if {
	t.denied(props({"approvals": [{"by": "erin@example.com", "role": "responsible_ai"}]}), "REL-003")
}

test_rel_003_tier1_same_person_twice_denied if {
	t.denied(props({"approvals": [{"by": "erin@example.com", "role": "responsible_ai"}, {"by": " ERIN@example.com", "role": "product"}]}), "REL-003")
}

test_rel_003_tier1_without_responsible_ai_denied if {
	t.denied(props({"approvals": [{"by": "erin@example.com", "role": "security"}, {"by": "frank@example.com", "role": "product"}]}), "REL-003")
}

test_rel_003_self_approval_denied if {
	self := [{"by": "dana@example.com", "role": "responsible_ai"}, {"by": "frank@example.com", "role": "product"}]
	t.denied(props({"approvals": self}), "REL-003")
	extra := array.concat(base.resource.properties.approvals, [{"by": "Dana@Example.com", "role": "product"}])
	t.denied(props({"approvals": extra}), "REL-003")
	t.denied(props({"risk_tier": 3, "evals": {"safety": 0.95}, "approvals": [{"by": "dana@example.com", "role": "product"}]}), "REL-003")
}

test_rel_003_missing_author_or_approvals_denied if {
	t.denied(without("author"), "REL-003")
	t.denied(without("approvals"), "REL-003")
	t.denied(props({"approvals": {"by": "erin@example.com", "role": "responsible_ai"}}), "REL-003")
	t.denied(props({"approvals": [{"by": ["erin"], "role": "responsible_ai"}, {"by": "frank@example.com", "role": "product"}]}), "REL-003")
}

test_rel_003_unknown_tier_gets_tier1_rule if {
	t.denied(props({"risk_tier": 9, "approvals": [{"by": "frank@example.com", "role": "product"}]}), "REL-003")
}

# REL-004 ----------------------------------------------------------------------------------------

test_rel_004_allowlisted if t.clean(props({"licenses": ["MIT", "BSD-3-Clause"]}), "REL-004")

test_rel_004_not_allowlisted if {
	t.denied(props({"licenses": ["MIT", "GPL-3.0-only"]}), "REL-004")
	t.denied(props({"licenses": ["mit"]}), "REL-004")
	t.denied(props({"licenses": [{"spdx": "MIT"}]}), "REL-004")
}

test_rel_004_names_each_license_off_the_allowlist if {
	r := t.decision(props({"licenses": ["MIT", "GPL-3.0-only", "CC-BY-NC-4.0"]}))
	found := {[v.license, v.message] | some v in r.violations; v.control == "REL-004"}
	found == {
		["GPL-3.0-only", "license not on the allowlist: GPL-3.0-only"],
		["CC-BY-NC-4.0", "license not on the allowlist: CC-BY-NC-4.0"],
	}
}

test_rel_004_missing_or_empty if {
	t.denied(without("licenses"), "REL-004")
	t.denied(props({"licenses": []}), "REL-004")
	t.denied(props({"licenses": "MIT"}), "REL-004")
}

# REL-005 ----------------------------------------------------------------------------------------

test_rel_005_complete if t.clean(base, "REL-005")

test_rel_005_incomplete if {
	t.denied(without("lineage"), "REL-005")
	t.denied(without("lineage/training_run"), "REL-005")
	t.denied(props({"lineage": {"datasets": []}}), "REL-005")
	t.denied(props({"lineage": {"datasets": ["ok", ""]}}), "REL-005")
	t.denied(props({"lineage": {"datasets": "tickets"}}), "REL-005")
	t.denied(props({"lineage": {"training_run": 42}}), "REL-005")
}

# REL-006 ----------------------------------------------------------------------------------------

test_rel_006_names_the_incident if {
	r := t.decision(props({"open_incidents": [{"id": "INC-4", "severity": "SEV1"}]}))
	some v in r.violations
	v.control == "REL-006"
	v.incident == {"id": "INC-4", "severity": "SEV1"}
	v.message == "open sev1/sev2 incident blocks the release: INC-4"
}

test_rel_006_no_blocking_incidents if {
	t.clean(base, "REL-006")
	t.clean(props({"open_incidents": []}), "REL-006")
	t.clean(props({"open_incidents": [{"id": "INC-9", "severity": "SEV4"}]}), "REL-006")
}

test_rel_006_blocking_incidents if {
	t.denied(props({"open_incidents": [{"id": "INC-2", "severity": "sev2"}]}), "REL-006")
	t.denied(props({"open_incidents": [{"id": "INC-3", "severity": "sev3"}, {"id": "INC-4", "severity": "SEV1"}]}), "REL-006")
}

test_rel_006_malformed_incidents if {
	t.denied(without("open_incidents"), "REL-006")
	t.denied(props({"open_incidents": {"severity": "sev1"}}), "REL-006")
	t.denied(props({"open_incidents": [{"id": "INC-5"}]}), "REL-006")
	t.denied(props({"open_incidents": ["INC-6"]}), "REL-006")
	t.denied(props({"open_incidents": [{"severity": 1}]}), "REL-006")
}

# REL-007 ----------------------------------------------------------------------------------------

frozen_now := "2026-12-24T10:00:00Z"

test_rel_007_outside_freeze_allowed if t.clean(base, "REL-007")

test_rel_007_prod_in_freeze_denied if {
	r := t.decision(object.union(base, {"now": frozen_now}))
	r.allow == false
	some v in r.violations
	v == {"control": "REL-007", "message": "change freeze in effect: year-end change freeze", "severity": "high"}
}

test_rel_007_missing_environment_counts_as_prod if {
	t.denied(json.remove(object.union(base, {"now": frozen_now}), ["context/environment"]), "REL-007")
	t.denied(object.union(base, {"now": frozen_now, "context": {"environment": 1}}), "REL-007")
}

test_rel_007_staging_in_freeze_allowed if {
	t.allowed(object.union(base, {"now": frozen_now, "context": {"environment": "staging"}}))
}

test_rel_007_window_bounds if {
	t.denied(object.union(base, {"now": "2026-12-18T00:00:00Z"}), "REL-007")
	t.clean(object.union(base, {"now": "2027-01-04T00:00:00Z"}), "REL-007")
	t.denied(object.union(base, {"now": "2026-12-17T20:00:00-05:00"}), "REL-007")
	t.clean(object.union(base, {"now": "2026-12-17T23:59:59.999Z"}), "REL-007")
}

test_rel_002_misconfigured_threshold_denies if {
	bad := object.union(data.verdict_data.release.thresholds, {"1": {"safety": {"minimum": 0.98, "min": null}}})
	t.denied(base, "REL-002") with data.verdict_data.release.thresholds as bad
}

test_rel_002_names_metric_value_and_threshold if {
	d := t.decision(props({"evals": {"safety": 0.5, "jailbreak_resistance": 0.95, "toxicity": 0.5}}))
	some below in d.violations
	below.metric == "safety"
	below.value == 0.5
	below.threshold == {"min": 0.98}
	some above in d.violations
	above.metric == "toxicity"
	above.threshold == {"max": 0.01}
}
