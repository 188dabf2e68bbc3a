# Model release gates (REL-001..REL-007)
# action.name == "release.deploy", resource.type == "model_release".
package verdict.release

import data.verdict.exceptions
import data.verdict.lib
import data.verdict.lib.time

in_scope if {
	input.action.name == "release.deploy"
	input.resource.type == "model_release"
}

decision := exceptions.decide(violations | lib.envelope_violations, set()) if in_scope

decision := exceptions.deny_out_of_scope if not in_scope

# props and the objects below default to {} so that negated checks on missing fields work
# (a call with an undefined argument makes `not ...` fail rather than succeed; see lib.get).
props := input.resource.properties if is_object(input.resource.properties)

else := {}

card := props.model_card if is_object(props.model_card)

else := {}

evals := props.evals if is_object(props.evals)

else := {}

lineage := props.lineage if is_object(props.lineage)

else := {}

cfg := data.verdict_data.release

# ---------------------------------------------------------------------------------------------
# REL-001: model card completeness.

model_card_fields := ["owner", "intended_use", "data_classification", "evaluation_report", "retention"]

violations contains {
	"control": "REL-001",
	"message": "model card is missing or not an object",
	"severity": "high",
} if not is_object(lib.get(props, "model_card"))

violations contains {
	"control": "REL-001",
	"message": concat("", ["model card field missing or empty: ", field]),
	"severity": "high",
} if {
	is_object(lib.get(props, "model_card"))
	some field in model_card_fields
	not lib.non_empty(lib.get(card, field))
}

# ---------------------------------------------------------------------------------------------
# REL-002: evaluation thresholds for the risk tier. A missing or non-numeric metric fails; an
# unknown tier fails.

tier := props.risk_tier if is_number(props.risk_tier)

else := 0

thresholds := t if {
	some key, t in cfg.thresholds
	to_number(key) == tier
	is_object(t)
}

violations contains {
	"control": "REL-002",
	"message": "risk tier is missing or unknown",
	"severity": "high",
} if not thresholds

violations contains {
	"control": "REL-002",
	"message": concat("", ["evaluation metric missing or not a number: ", metric]),
	"severity": "high",
} if {
	some metric, _ in thresholds
	not is_number(lib.get(evals, metric))
}

violations contains {
	"control": "REL-002",
	"message": concat("", ["evaluation below the tier threshold: ", metric]),
	"severity": "high",
	"metric": metric,
	"value": evals[metric],
	"threshold": {"min": limit.min},
} if {
	some metric, limit in thresholds
	is_number(limit.min)
	is_number(evals[metric])
	evals[metric] < limit.min
}

violations contains {
	"control": "REL-002",
	"message": concat("", ["evaluation above the tier threshold: ", metric]),
	"severity": "high",
	"metric": metric,
	"value": evals[metric],
	"threshold": {"max": limit.max},
} if {
	some metric, limit in thresholds
	is_number(limit.max)
	is_number(evals[metric])
	evals[metric] > limit.max
}

# A threshold entry without a numeric min or max is a misconfiguration: fail closed.
violations contains {
	"control": "REL-002",
	"message": concat("", ["threshold is misconfigured: ", metric]),
	"severity": "high",
} if {
	some metric, limit in thresholds
	not is_number(object.get(limit, "min", null))
	not is_number(object.get(limit, "max", null))
}

# ---------------------------------------------------------------------------------------------
# REL-003: approvals. Tier 1 (and an unknown tier) needs two distinct approvers including the role
# responsible_ai; tiers 2-3 need one. Nobody approves their own release.

author := lib.norm(props.author) if lib.non_empty_string(props.author)

valid_approvals contains {"by": lib.norm(a.by), "role": a.role} if {
	is_array(props.approvals)
	some a in props.approvals
	is_object(a)
	lib.non_empty_string(a.by)
	is_string(a.role)
	lib.norm(a.by) != author
}

approvers := {a.by | some a in valid_approvals}

# tier defaults to 0 (unknown), which gets the strictest (tier 1) rule.
required_approvers := 1 if tier in {2, 3}

required_approvers := 2 if not tier in {2, 3}

violations contains {
	"control": "REL-003",
	"message": "release author is missing",
	"severity": "high",
} if not lib.non_empty_string(lib.get(props, "author"))

violations contains {
	"control": "REL-003",
	"message": "the author may not approve their own release",
	"severity": "high",
} if {
	is_array(props.approvals)
	some a in props.approvals
	lib.norm(a.by) == author
}

violations contains {
	"control": "REL-003",
	"message": "not enough distinct approvers for the risk tier",
	"severity": "high",
} if count(approvers) < required_approvers

violations contains {
	"control": "REL-003",
	"message": "tier 1 releases need an approval by role responsible_ai",
	"severity": "high",
} if {
	required_approvers == 2
	not responsible_ai_approved
}

responsible_ai_approved if {
	some a in valid_approvals
	a.role == "responsible_ai"
}

# ---------------------------------------------------------------------------------------------
# REL-004: every license is on the allowlist; the list must be present and non-empty.

violations contains {
	"control": "REL-004",
	"message": "licenses are missing or not a non-empty array",
	"severity": "high",
} if not licenses_present

licenses_present if {
	is_array(props.licenses)
	count(props.licenses) > 0
}

violations contains {
	"control": "REL-004",
	"message": sprintf("license not on the allowlist: %v", [l]),
	"severity": "high",
	"license": l,
} if {
	is_array(props.licenses)
	some l in props.licenses
	not l in cfg.license_allowlist
}

# ---------------------------------------------------------------------------------------------
# REL-005: lineage names its datasets and training run.

violations contains {
	"control": "REL-005",
	"message": "lineage must list datasets (non-empty strings)",
	"severity": "high",
} if not datasets_ok

datasets_ok if {
	is_array(lineage.datasets)
	count(lineage.datasets) > 0
	every d in lineage.datasets {
		lib.non_empty_string(d)
	}
}

violations contains {
	"control": "REL-005",
	"message": "lineage must name the training run",
	"severity": "high",
} if not lib.non_empty_string(lib.get(lineage, "training_run"))

# ---------------------------------------------------------------------------------------------
# REL-006: no open sev1/sev2 incidents. The list must be present (empty when there are none);
# an incident with an unknown severity blocks.

violations contains {
	"control": "REL-006",
	"message": "open_incidents must be an array (empty when there are none)",
	"severity": "high",
} if not is_array(lib.get(props, "open_incidents"))

violations contains {
	"control": "REL-006",
	"message": concat("", ["open sev1/sev2 incident blocks the release: ", lib.str_or(lib.get(i, "id"), "(no id)")]),
	"severity": "critical",
	"incident": i,
} if {
	is_array(props.open_incidents)
	some i in props.open_incidents
	not minor_incident(i)
}

minor_incident(i) if {
	is_string(i.severity)
	lib.norm(i.severity) in {"sev3", "sev4", "sev5"}
}

# ---------------------------------------------------------------------------------------------
# REL-007: no release to prod during a change freeze. A missing environment counts as prod.

non_prod if lib.norm(lib.get(input.context, "environment")) in {"dev", "development", "test", "staging", "qa", "sandbox"}

violations contains {
	"control": "REL-007",
	"message": concat("", ["change freeze in effect: ", lib.str_or(w.reason, "freeze window")]),
	"severity": "high",
} if {
	not non_prod
	some w in cfg.freeze_windows
	lib.now >= time.ns(w.start)
	lib.now < time.ns(w.end)
}
