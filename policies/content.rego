# Guardrails on text (CONTENT-001..004)
# action.name == "model.prompt" or "model.response" on resource.type "model" (resource.id = the
# model), or "tool.result" on resource.type "tool". The text is resource.properties.content (a string,
# or an array of {role, text}); the server's detectors attach what they found as input.findings
# ([{detector, kind, path, start, end}], kind secret | pii | prompt_injection), like caller and now:
# the policy reads findings, never the text, so a decision replays on the findings as recorded.
# data.json says so (verdict_data.content.policy_reads_text: false), and Verdict then hands the
# policy the content with each text emptied (the structure and roles stay).
#
# Verdict finds, the policy decides, the enforcement point acts: a redaction is an obligation
# {"type": "redact", "control", "reason", "spans": [{path, start, end, kind}]}; an injection in
# untrusted text is the obligation {"type": "mark_untrusted", ...} (the enforcement point then sets
# context.session.untrusted_content, so TOOL-002 applies to the next side-effecting call). These
# obligations stand without a violation (the decision may allow); a waiver of their control drops
# them, except mark_untrusted (see CONTROLS.md).
package verdict.content

import data.verdict.exceptions
import data.verdict.lib

# The resource type each content action is judged on.
action_resource := {"model.prompt": "model", "model.response": "model", "tool.result": "tool"}

in_scope if action_resource[input.action.name] == input.resource.type

decision := object.union(base, {
	"obligations": exceptions.sort_obligations(kept_obligations),
	"exceptions": sort(base_exceptions | advisory_waivers),
}) if {
	in_scope
	base := exceptions.decide(violations | lib.envelope_violations, set())
	base_exceptions := {e | some e in base.exceptions}
}

cfg := data.verdict_data.content

props := input.resource.properties if is_object(input.resource.properties)

else := {}

findings := input.findings if is_array(input.findings)

else := []

span(f) := {"path": f.path, "start": f.start, "end": f.end, "kind": f.kind}

# destination: where the text goes. A missing one is the action's own (a prompt goes to the model,
# a response to the user, a tool result to the model); an unknown one counts as external.
natural_destination := {"model.prompt": "model", "model.response": "user", "tool.result": "model"}

destination := d if {
	d := input.context.destination
	d in {"user", "external", "tool", "model"}
} else := natural_destination[input.action.name] if {
	not lib.present(input.context, "destination")
} else := "external"

# can_redact: the enforcement point can apply a redaction (context.can_redact, default true; a
# non-boolean counts as false).
cannot_redact if {
	lib.present(input.context, "can_redact")
	input.context.can_redact != true
}

# ---------------------------------------------------------------------------------------------
# INPUT-001 (not waivable): the content must be a string or an array of {role?, text}.

violations contains {
	"control": "INPUT-001",
	"message": "resource.properties.content must be a string or an array of {role, text}",
	"severity": "high",
} if not valid_content

valid_content if is_string(props.content)

valid_content if {
	is_array(props.content)
	every part in props.content {
		is_object(part)
		is_string(part.text)
		valid_role(part)
	}
}

valid_role(part) if not lib.present(part, "role")

valid_role(part) if is_string(part.role)

# ---------------------------------------------------------------------------------------------
# CONTENT-001: secrets never leave to a user, an external destination or a model. Redacted where
# the destination allows it; denied where it does not (cfg.secrets.deny_destinations) or where the
# enforcement point cannot redact.

secret_spans := [span(f) | some f in findings; f.kind == "secret"]

secrets_leave if {
	count(secret_spans) > 0
	destination in cfg.secrets.guarded_destinations
}

secrets_denied if {
	secrets_leave
	destination in cfg.secrets.deny_destinations
}

secrets_denied if {
	secrets_leave
	cannot_redact
}

violations contains {
	"control": "CONTENT-001",
	"message": "a secret may not leave to this destination, and it cannot be redacted here",
	"severity": "critical",
} if secrets_denied

advisories contains {
	"type": "redact",
	"control": "CONTENT-001",
	"reason": "secrets never leave to a user, an external destination or a model",
	"spans": secret_spans,
} if secrets_leave

# ---------------------------------------------------------------------------------------------
# CONTENT-002: personal data follows purpose and destination. What the purpose lets through to this
# destination (cfg.pii.purposes[purpose][destination]: detector names) passes; the rest is
# redacted, and denied when it would leave to an external destination with restricted data (a
# missing or unknown context.data_classification counts as restricted).

purpose := lower(input.context.purpose) if is_string(input.context.purpose)

else := ""

pii_passes(f) if f.detector in cfg.pii.purposes[purpose][destination]

pii_spans := [span(f) | some f in findings; f.kind == "pii"; not pii_passes(f)]

pii_guarded if count(pii_spans) > 0

restricted_data if not lib.get(input.context, "data_classification") in {"public", "internal", "confidential"}

violations contains {
	"control": "CONTENT-002",
	"message": "personal data of restricted data may not leave to an external destination",
	"severity": "high",
} if {
	pii_guarded
	destination == "external"
	restricted_data
}

violations contains {
	"control": "CONTENT-002",
	"message": "personal data must be redacted for this purpose and destination, and it cannot be redacted here",
	"severity": "high",
} if {
	pii_guarded
	cannot_redact
}

advisories contains {
	"type": "redact",
	"control": "CONTENT-002",
	"reason": "personal data is redacted unless the purpose allows it at this destination",
	"spans": pii_spans,
} if pii_guarded

# ---------------------------------------------------------------------------------------------
# CONTENT-003: a prompt-injection finding in text from an untrusted source — a tool result, or a
# prompt part whose role is not trusted (cfg.injection.trusted_roles; a plain-string prompt has no
# role and is untrusted) — marks the session untrusted, and denies the prompt when the model's risk
# tier is in cfg.injection.deny_tiers (an unknown tier counts as 1, the strictest).

part_role(f) := lib.get(props.content[to_number(substring(f.path, 1, indexof(substring(f.path, 1, -1), "/")))], "role")

untrusted_source(_) if input.action.name == "tool.result"

untrusted_source(f) if {
	input.action.name == "model.prompt"
	f.path == ""
}

untrusted_source(f) if {
	input.action.name == "model.prompt"
	f.path != ""
	not part_role(f) in cfg.injection.trusted_roles
}

injections := [f | some f in findings; f.kind == "prompt_injection"; untrusted_source(f)]

injected if count(injections) > 0

model_tier := t if {
	t := data.verdict_data.models[input.resource.id].risk_tier
	t in {1, 2, 3}
} else := 1

violations contains {
	"control": "CONTENT-003",
	"message": "prompt injection in untrusted text sent to a model whose risk tier forbids it",
	"severity": "high",
} if {
	injected
	input.action.name == "model.prompt"
	model_tier in cfg.injection.deny_tiers
}

advisories contains {
	"type": "mark_untrusted",
	"control": "CONTENT-003",
	"reason": "prompt injection in untrusted text: set context.session.untrusted_content (TOOL-002)",
} if injected

# ---------------------------------------------------------------------------------------------
# CONTENT-004: the caller's own classifier scores (context.moderation.categories: {name: score})
# over the threshold of their category for this destination (cfg.moderation.thresholds[destination],
# else .default) deny. A configured category with a non-numeric score denies.

moderation_present if lib.present(input.context, "moderation")

categories := input.context.moderation.categories if is_object(input.context.moderation.categories)

else := {}

thresholds := object.union(
	object.get(cfg.moderation.thresholds, "default", {}),
	object.get(cfg.moderation.thresholds, destination, {}),
)

violations contains {
	"control": "CONTENT-004",
	"message": "context.moderation must be {categories: {name: score}}",
	"severity": "high",
} if {
	moderation_present
	not is_object(lib.get(input.context.moderation, "categories"))
}

violations contains {
	"control": "CONTENT-004",
	"message": "a moderation category is over its threshold",
	"severity": "high",
	"category": name,
	"score": score,
	"threshold": limit,
} if {
	some name, limit in thresholds
	score := categories[name]
	is_number(score)
	score > limit
}

violations contains {
	"control": "CONTENT-004",
	"message": "a moderation score is not a number",
	"severity": "high",
	"category": name,
} if {
	some name, _ in thresholds
	lib.present(categories, name)
	not is_number(categories[name])
}

# ---------------------------------------------------------------------------------------------
# Obligations that stand without a violation, and the waivers that drop them.

waived(control) if {
	some e in exceptions.active
	e.control == control
}

# mark_untrusted is kept even under a CONTENT-003 waiver: a waiver lets the model read the text,
# it does not make the session trusted again (that is TOOL-002's own waiver).
unwaivable_advisories := {"mark_untrusted"}

kept_obligations contains o if {
	some o in advisories
	not waived(o.control)
}

kept_obligations contains o if {
	some o in advisories
	o.type in unwaivable_advisories
}

advisory_waivers contains exceptions.waiver_of(o.control) if {
	some o in advisories
	not o.type in unwaivable_advisories
	waived(o.control)
}
