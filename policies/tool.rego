# Agent tool calls (TOOL-001..TOOL-007)
# action.name == "tool.call", resource.type == "tool", resource.id = tool name.
package verdict.tool

import data.verdict.exceptions
import data.verdict.lib
import data.verdict.lib.time

in_scope if {
	input.action.name == "tool.call"
	input.resource.type == "tool"
}

decision := exceptions.decide_with(violations | lib.envelope_violations, obligations, approvals_used) if in_scope

decision := exceptions.deny_out_of_scope if not in_scope

agent_id := input.subject.id if is_string(input.subject.id)

tool_name := input.resource.id if is_string(input.resource.id)

agent := data.verdict_data.agents[agent_id]

# tool_meta: what the registry knows about the tool; it outranks what the caller claims.
tool_meta := m if {
	m := data.verdict_data.tools[tool_name]
	is_object(m)
} else := {}

# props: resource.properties, or {} (INPUT-001 denies a non-object). Always defined, so that
# negated checks on its fields work (see lib.get).
props := input.resource.properties if is_object(input.resource.properties)

else := {}

session := input.context.session if is_object(input.context.session)

else := {}

args := props.arguments

# ---------------------------------------------------------------------------------------------
# TOOL-001: the tool is on the calling agent's allowlist.

violations contains {
	"control": "TOOL-001",
	"message": "subject is not an agent",
	"severity": "high",
} if not subject_is_agent

subject_is_agent if input.subject.type == "agent"

violations contains {
	"control": "TOOL-001",
	"message": "agent is not registered",
	"severity": "high",
} if not agent_registered

agent_registered if is_object(agent)

violations contains {
	"control": "TOOL-001",
	"message": "tool is not on the agent's allowlist",
	"severity": "high",
} if {
	agent_registered
	not tool_allowed
}

tool_allowed if {
	is_array(agent.tools)
	some t in agent.tools
	t == tool_name
}

# ---------------------------------------------------------------------------------------------
# Human approval (TOOL-002, TOOL-003): only an approval held by the PDP counts. The decision service
# attaches it as input.grants.approval when the request names context.approval_id, with
# input.grants.arguments_digest (SHA-256 of the canonical JSON of resource.properties.arguments). It
# must be granted, bound to this agent, tool, arguments and on-behalf-of user, unexpired at now,
# not used up, and granted by someone other than the agent. A client-sent context.approval object
# counts only when the server says so (input.grants.legacy_client_approvals, off by default): a
# prompt-injected agent can write any context it likes.

stored_approval := a if {
	a := input.grants.approval
	is_object(a)
}

stored_approval_valid if {
	a := stored_approval
	lib.non_empty_string(a.id)
	a.state == "granted"
	a.agent == agent_id
	a.tool == tool_name
	lib.non_empty_string(a.arguments_digest)
	a.arguments_digest == input.grants.arguments_digest
	object.get(a, "on_behalf_of", null) == approval_on_behalf_of
	time.ns(a.expires_at) > lib.now
	is_number(a.uses)
	is_number(a.max_uses)
	a.uses < a.max_uses
	lib.non_empty_string(a.granted_by)
	lib.norm(a.granted_by) != lib.norm(agent_id)
}

# The on-behalf-of user an approval is bound to: the string the envelope names, else null.
approval_on_behalf_of := input.subject.properties.on_behalf_of if is_string(input.subject.properties.on_behalf_of)

else := null

legacy_client_approvals if input.grants.legacy_client_approvals == true

legacy_approval_valid if {
	legacy_client_approvals
	a := input.context.approval
	is_object(a)
	lib.non_empty_string(a.approved_by)
	lib.norm(a.approved_by) != lib.norm(agent_id)
	time.ns(a.expires_at) > lib.now
	approval_for_this_tool(a)
}

approval_for_this_tool(a) if object.get(a, "resource_id", null) == null

approval_for_this_tool(a) if a.resource_id == tool_name

approval_valid if stored_approval_valid

approval_valid if legacy_approval_valid

# needs_approval: a control of this request asks for a human approval.
needs_approval if {
	untrusted
	side_effecting
}

needs_approval if high_risk

# approvals_used: the stored approval that satisfied TOOL-002 / TOOL-003 (listed in the result, and
# consumed by the service when the decision allows).
approvals_used contains stored_approval.id if {
	needs_approval
	stored_approval_valid
}

# ---------------------------------------------------------------------------------------------
# TOOL-002: no side effects after untrusted content without a valid human approval.

side_effecting if props.side_effects == true

side_effecting if tool_meta.side_effects == true

side_effecting if {
	lib.present(props, "side_effects")
	not is_boolean(props.side_effects)
}

untrusted if session.untrusted_content == true

untrusted if {
	lib.present(session, "untrusted_content")
	not is_boolean(session.untrusted_content)
}

tool_002 if {
	untrusted
	side_effecting
	not approval_valid
}

violations contains {
	"control": "TOOL-002",
	"message": "side-effecting tool call after untrusted content without a valid human approval",
	"severity": "high",
} if tool_002

obligations contains {
	"type": "human_approval",
	"control": "TOOL-002",
	"reason": "side-effecting tool call after untrusted content in the session",
} if tool_002

# ---------------------------------------------------------------------------------------------
# TOOL-003: high-risk tools need a valid human approval. An unknown risk value counts as high.

high_risk if props.risk == "high"

high_risk if tool_meta.risk == "high"

high_risk if {
	lib.present(props, "risk")
	not props.risk in {"low", "medium", "high"}
}

tool_003 if {
	high_risk
	not approval_valid
}

violations contains {
	"control": "TOOL-003",
	"message": "high-risk tool call without a valid human approval",
	"severity": "high",
} if tool_003

obligations contains {
	"type": "human_approval",
	"control": "TOOL-003",
	"reason": "high-risk tool: approval by a human other than the agent, unexpired",
} if tool_003

# ---------------------------------------------------------------------------------------------
# TOOL-004: no egress of confidential or restricted data. An unknown destination counts as external,
# a missing or unknown classification as restricted.

external if props.destination == "external"

external if tool_meta.destination == "external"

external if {
	lib.present(props, "destination")
	not props.destination in {"internal", "external"}
}

releasable if lib.get(input.context, "data_classification") in {"public", "internal"}

violations contains {
	"control": "TOOL-004",
	"message": "confidential or restricted data may not leave to an external destination",
	"severity": "critical",
} if {
	external
	not releasable
}

# ---------------------------------------------------------------------------------------------
# TOOL-005: argument constraints per tool (data.verdict_data.tool_constraints).

constraint := data.verdict_data.tool_constraints[tool_name]

violations contains {
	"control": "TOOL-005",
	"message": "tool arguments must be an object",
	"severity": "high",
} if {
	lib.present(props, "arguments")
	not is_object(args)
}

violations contains {
	"control": "TOOL-005",
	"message": "tool arguments are missing",
	"severity": "high",
} if {
	constraint
	not lib.present(props, "arguments")
}

violations contains {
	"control": "TOOL-005",
	"message": "tool constraint is misconfigured",
	"severity": "high",
} if {
	constraint
	not constraint_kind_known
}

constraint_kind_known if constraint.kind in {"shell", "http", "path"}

arg := args[constraint.argument] if is_object(args)

violations contains {
	"control": "TOOL-005",
	"message": "constrained argument is missing or not a string",
	"severity": "high",
} if {
	constraint
	not arg_is_string
}

arg_is_string if is_string(arg)

# shell: no destructive commands, no pipe-to-shell downloads.
violations contains {
	"control": "TOOL-005",
	"message": concat("", ["shell command rejected: ", lib.str_or(p.reason, "denied pattern")]),
	"severity": "critical",
} if {
	constraint.kind == "shell"
	is_string(arg)
	some p in constraint.deny_patterns
	may_match(p)
	regex.match(p.pattern, arg)
}

# A deny pattern may list `needles`: lower-case literals, at least one of which every match of the
# pattern contains. OPA's wasm runtime compiles a regex on every call, so the regex runs only when
# the command holds a needle; benign commands (most of them) skip all ten compiles. RE2's (?i)
# also folds U+017F (long s) to s and U+212A (Kelvin sign) to k, which lower() does not, so either
# character in the command turns the shortcut off. policies/tests/data_test.rego and
# test/policies/shell-needles.test.ts check the needles against the patterns.
lower_arg := lower(arg) if is_string(arg)

may_match(p) if not p.needles

may_match(p) if {
	some needle in p.needles
	contains(lower_arg, needle)
}

may_match(_) if contains(arg, "\u017f")

may_match(_) if contains(arg, "\u212a")

# http: only allow-listed hosts, no userinfo, allowed schemes only.
violations contains {
	"control": "TOOL-005",
	"message": "URL is malformed or its host is not allow-listed",
	"severity": "high",
} if {
	constraint.kind == "http"
	is_string(arg)
	not url_allowed(arg)
}

# URLs are taken apart with string builtins, not regex: OPA's wasm target compiles a regex on every
# call, which made this control cost most of a tool-call decision.
# scheme://authority[/?#rest] — the authority ends at the first '/', '?' or '#'.
url_allowed(url) if {
	not contains(url, "\n")
	i := indexof(url, "://")
	i > 0
	lower(substring(url, 0, i)) in object.get(constraint, "allowed_schemes", ["https"])
	rest := substring(url, i + 3, -1)
	authority := lower(split(split(split(rest, "/")[0], "?")[0], "#")[0])
	not contains(authority, "@")
	host := host_of(authority)
	valid_hostname(host)
	host_allowed(host)
}

# host_of: the host of an authority, after an optional :port of 1 to 5 digits.
host_of(authority) := authority if not contains(authority, ":")

host_of(authority) := parts[0] if {
	parts := split(authority, ":")
	count(parts) == 2
	port := parts[1]
	count(port) >= 1
	count(port) <= 5
	every c in split(port, "") {
		c in digits
	}
}

digits := {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

hostname_chars := {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "-"}

# valid_hostname: dot-separated labels of [a-z0-9-], none empty, none starting or ending with '-'.
valid_hostname(host) if {
	every label in split(host, ".") {
		label != ""
		not startswith(label, "-")
		not endswith(label, "-")
		every c in split(label, "") {
			c in hostname_chars
		}
	}
}

host_allowed(host) if {
	some allowed in constraint.allowed_hosts
	not startswith(allowed, "*.")
	host == lower(allowed)
}

host_allowed(host) if {
	some allowed in constraint.allowed_hosts
	startswith(allowed, "*.")
	endswith(host, lower(substring(allowed, 1, -1)))
}

# path: under an allowed prefix, no traversal, no NUL.
violations contains {
	"control": "TOOL-005",
	"message": "path is outside the allowed prefixes or contains traversal",
	"severity": "high",
} if {
	constraint.kind == "path"
	is_string(arg)
	not path_allowed(arg)
}

path_allowed(path) if {
	not contains(path, "\u0000")
	not contains(path, "\\")
	not ".." in split(path, "/")
	some prefix in constraint.allowed_prefixes
	startswith(path, prefix)
}

# ---------------------------------------------------------------------------------------------
# TOOL-006: per-session tool-call budget (per agent, with a default). A missing or invalid count denies.

budget := b if {
	b := data.verdict_data.session_budgets.per_agent[agent_id]
	is_number(b)
} else := b if {
	b := data.verdict_data.session_budgets.default
	is_number(b)
} else := 0

valid_count if {
	is_number(session.tool_calls)
	session.tool_calls >= 0
}

violations contains {
	"control": "TOOL-006",
	"message": "session tool-call count is missing or invalid",
	"severity": "medium",
} if not valid_count

violations contains {
	"control": "TOOL-006",
	"message": "session tool-call budget exhausted",
	"severity": "medium",
} if {
	valid_count
	session.tool_calls >= budget
}

# ---------------------------------------------------------------------------------------------
# TOOL-007: confused-deputy guard. Acting on behalf of a user, the user must hold the tool's
# required entitlement (from the registry and from the request).

on_behalf_of := input.subject.properties.on_behalf_of if {
	input.subject.properties.on_behalf_of != null
	input.subject.properties.on_behalf_of != ""
	input.subject.properties.on_behalf_of != false
}

required_entitlements contains tool_meta.required_entitlement if lib.present(tool_meta, "required_entitlement")

required_entitlements contains props.required_entitlement if lib.present(props, "required_entitlement")

entitled(e) if {
	is_string(e)
	is_array(input.context.user.entitlements)
	some x in input.context.user.entitlements
	x == e
}

violations contains {
	"control": "TOOL-007",
	"message": sprintf("the user the agent acts for lacks the tool's required entitlement: %v", [e]),
	"severity": "high",
	"entitlement": e,
} if {
	on_behalf_of
	some e in required_entitlements
	not entitled(e)
}

violations contains {
	"control": "TOOL-007",
	"message": "on_behalf_of does not match context.user.id",
	"severity": "high",
} if {
	on_behalf_of
	lib.present(input.context.user, "id")
	input.context.user.id != on_behalf_of
}
