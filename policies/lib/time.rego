# RFC 3339 timestamps
# OPA's wasm target compiles no time.* builtin natively; Verdict's engine implements
# time.parse_rfc3339_ns in JavaScript with Go's time.Parse(RFC3339) semantics (src/engine/builtins.ts),
# and opa eval / opa run --server use their native one. Parsing in Rego instead (regex plus
# arbitrary-precision arithmetic) cost most of each evaluation. Policies read time only from input.now
# (never time.now_ns()), so every decision replays exactly.
package verdict.lib.time

import rego.v1

# ns: nanoseconds since the Unix epoch for a valid RFC 3339 timestamp; undefined for anything else
# (wrong type, bad format, impossible date), so callers fail closed. Times are only ever compared,
# never divided: arbitrary-precision division is slow in the wasm target.
ns(ts) := time.parse_rfc3339_ns(ts) if is_string(ts)
