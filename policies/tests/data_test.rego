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
