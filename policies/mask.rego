# Decision-log masking
# OPA decision-log convention: data.system.log.mask receives the whole decision event (the
# original input at input.input) and returns JSON pointers to erase. Pointers are only returned
# for fields that are present, sorted.
package system.log

import data.verdict.lib

secret_key_re := `(?i)(passw(or)?d|passphrase|secret|token|api[_-]?key|apikey|authorization|auth[_-]?header|credential|private[_-]?key|cookie|session[_-]?id|ssn|card[_-]?number)`

fixed_pointers := [
	["/input/context/user/email", ["context", "user", "email"]],
	["/input/context/user/phone", ["context", "user", "phone"]],
	["/input/context/user/name", ["context", "user", "name"]],
	["/input/context/approval/token", ["context", "approval", "token"]],
	["/input/subject/properties/email", ["subject", "properties", "email"]],
]

# JSON pointer escaping (RFC 6901).
escape(k) := replace(replace(k, "~", "~0"), "/", "~1")

pointers contains p if {
	some entry in fixed_pointers
	p := entry[0]
	path := entry[1]
	lib.present(input.input[path[0]][path[1]], path[2])
}

pointers contains p if {
	some k, _ in input.input.resource.properties.arguments
	is_string(k)
	regex.match(secret_key_re, k)
	p := concat("", ["/input/resource/properties/arguments/", escape(k)])
}

pointers contains p if {
	some k, _ in input.input.context.headers
	is_string(k)
	regex.match(secret_key_re, k)
	p := concat("", ["/input/context/headers/", escape(k)])
}

mask := sort(pointers)
