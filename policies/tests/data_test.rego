# Validates policies/data.json itself: a malformed entry would otherwise fail silently.
package verdict.data_json_test

import data.verdict.lib.time

test_agents_have_tool_lists if {
	every id, a in data.verdict_data.agents {
		is_string(id)
		is_array(a.tools)
		every tool in a.tools {
			is_object(data.verdict_data.tools[tool])
		}
	}
}

test_tool_registry_values if {
	every _, m in data.verdict_data.tools {
		is_boolean(m.side_effects)
		m.risk in {"low", "medium", "high"}
		m.destination in {"internal", "external"}
	}
}

test_deny_patterns_are_valid_regexes if {
	every _, c in data.verdict_data.tool_constraints {
		c.kind in {"shell", "http", "path"}
		is_string(c.argument)
		every p in object.get(c, "deny_patterns", []) {
			regex.is_valid(p.pattern)
			is_string(p.reason)
			needles_well_formed(p)
		}
	}
}

# Needles (policies/tool.rego) are optional; when given, a non-empty list of lower-case strings
# (an empty list would switch the pattern off).
needles_well_formed(p) if not "needles" in object.keys(p)

needles_well_formed(p) if {
	count(p.needles) > 0
	every n in p.needles {
		is_string(n)
		n != ""
		n == lower(n)
	}
}

test_budgets_are_numbers if {
	is_number(data.verdict_data.session_budgets.default)
	every agent, b in data.verdict_data.session_budgets.per_agent {
		is_number(b)
		data.verdict_data.agents[agent]
	}
}

test_thresholds_cover_tiers if {
	every tier in ["1", "2", "3"] {
		every metric in ["safety", "jailbreak_resistance", "toxicity"] {
			data.verdict_data.release.thresholds[tier][metric]
		}
	}
}

test_freeze_windows_parse if {
	every w in data.verdict_data.release.freeze_windows {
		time.ns(w.start) < time.ns(w.end)
		is_string(w.reason)
	}
}

test_no_default_exceptions if data.verdict_data.exceptions == []

# The control catalog names every control of CONTROLS.md exactly once, with a known severity; the
# fail-closed controls are not waivable. Grant settings are well-formed.
test_control_catalog if {
	controls := data.verdict_data.controls
	every _, c in controls {
		c.severity in {"medium", "high", "critical"}
		is_boolean(c.waivable)
	}
	controls["DEFAULT-DENY"].waivable == false
	controls["INPUT-001"].waivable == false
	every id in {"TOOL-001", "TOOL-002", "TOOL-003", "TOOL-004", "TOOL-005", "TOOL-006", "TOOL-007", "REL-001", "REL-002", "REL-003", "REL-004", "REL-005", "REL-006", "REL-007", "DATA-001", "DATA-002", "DATA-003", "DATA-004", "CONTENT-001", "CONTENT-002", "CONTENT-003", "CONTENT-004"} {
		controls[id].waivable == true
	}
	count(controls) == 24
}

test_grant_settings if {
	g := data.verdict_data.grants
	every _, days in g.waiver_max_days {
		is_number(days)
		days > 0
	}
	g.waiver_max_days["default"] == 90
	g.waiver_max_days.critical == 30
	g.two_approver_severities == ["critical"]
	g.approval_window_minutes == 15
	g.approval_max_uses == 1
	g.on_behalf_of_may_approve == false
}

# Guardrails settings (policies/content.rego): national-identifier regions are strings the
# detectors know (src/guardrails/detectors.ts: us, gb), destinations are known ones.
test_content_settings if {
	c := data.verdict_data.content
	every r in c.pii.regions {
		r in {"us", "gb"}
	}
	every d in array.concat(c.secrets.guarded_destinations, c.secrets.deny_destinations) {
		d in {"user", "external", "tool", "model"}
	}
	every _, by_destination in c.pii.purposes {
		every d, detectors in by_destination {
			d in {"user", "external", "tool", "model"}
			is_array(detectors)
		}
	}
	every t in c.injection.deny_tiers {
		t in {1, 2, 3}
	}
	every _, m in data.verdict_data.models {
		m.risk_tier in {1, 2, 3}
	}
	every _, thresholds in c.moderation.thresholds {
		every _, v in thresholds {
			is_number(v)
		}
	}
}
