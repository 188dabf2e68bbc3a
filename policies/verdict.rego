# Verdict decision router
# Entrypoint verdict/decision routes an envelope by action.name and resource.type to a domain
# policy and always returns {"allow", "violations", "obligations", "exceptions"}. Anything no
# domain handles is denied with DEFAULT-DENY. verdict/allow is the boolean for simple clients.
package verdict

import data.verdict.content
import data.verdict.data as data_access
import data.verdict.exceptions
import data.verdict.release
import data.verdict.tool

default decision := {
	"allow": false,
	"violations": [{
		"control": "DEFAULT-DENY",
		"message": "no policy handles this action and resource type",
		"severity": "high",
	}],
	"obligations": [],
	"exceptions": [],
}

decision := tool.decision if tool.in_scope

decision := release.decision if release.in_scope

decision := data_access.decision if data_access.in_scope

decision := content.decision if content.in_scope

decision := exceptions.deny_out_of_scope if {
	not tool.in_scope
	not release.in_scope
	not data_access.in_scope
	not content.in_scope
}

default allow := false

allow := decision.allow if is_boolean(decision.allow)
