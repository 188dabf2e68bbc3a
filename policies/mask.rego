# Decision-log masking
# OPA decision-log convention: data.system.log.mask receives the whole decision event (the
# original input at input.input) and returns JSON pointers to erase. Pointers are only returned
# for fields that are present, sorted.
package system.log

import data.verdict.lib

# A key is secret-ish when its lower-cased form contains one of these fragments. Plain substring
# checks, not a regex: the mask runs on every decision and OPA's wasm compiles a regex per call.
secret_key_fragments := [
	"password", "passwd", "passphrase", "secret", "token", "apikey", "api_key", "api-key",
	"authorization", "authheader", "auth_header", "auth-header", "credential", "privatekey",
	"private_key", "private-key", "cookie", "sessionid", "session_id", "session-id", "ssn",
	"cardnumber", "card_number", "card-number",
]

secret_key(k) if {
	lk := lower(k)
	some fragment in secret_key_fragments
	contains(lk, fragment)
}

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
	secret_key(k)
	p := concat("", ["/input/resource/properties/arguments/", escape(k)])
}

pointers contains p if {
	some k, _ in input.input.context.headers
	is_string(k)
	secret_key(k)
	p := concat("", ["/input/context/headers/", escape(k)])
}

mask := sort(pointers)
