# Test helpers (a *_test.rego file: never part of the bundle).
package verdict.testing

now := "2026-11-26T12:00:00Z"

caller := {"sub": "svc-agent-runtime", "iss": "https://issuer.example", "clientId": "agent-runtime", "scopes": ["decisions:evaluate"]}

decision(inp) := r if {
	r := data.verdict.decision with input as inp
}

# denied(inp, control): the decision denies and names control among its violations.
denied(inp, control) if {
	r := decision(inp)
	r.allow == false
	some v in r.violations
	v.control == control
}

# allowed(inp): the decision allows with no violations.
allowed(inp) if {
	r := decision(inp)
	r.allow == true
	r.violations == []
}

# clean(inp, control): control is not among the violations (other controls may fire).
clean(inp, control) if {
	r := decision(inp)
	every v in r.violations {
		v.control != control
	}
}

controls(inp) := {v.control | some v in decision(inp).violations}
