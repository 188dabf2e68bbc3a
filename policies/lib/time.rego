# RFC 3339 timestamps without time builtins
# OPA's wasm target compiles no time.* builtin natively and the npm SDK implements none, so
# timestamps are parsed here with regex and arithmetic. Policies read time only from input.now
# (never time.now_ns()), so every decision replays exactly.
package verdict.lib.time

rfc3339 := `^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$`

pow10 := [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000]

digit := {"0": 0, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7, "8": 8, "9": 9}

# int parses a string of ASCII digits (leading zeros allowed) as a non-negative integer.
int(s) := n if {
	chars := split(s, "")
	count(chars) > 0
	count(chars) <= 9
	n := sum([x | some i, c in chars; x := digit[c] * pow10[(count(chars) - i) - 1]])
}

leap(y) if {
	y % 4 == 0
	y % 100 != 0
}

leap(y) if y % 400 == 0

days_in_month(y, 2) := 29 if leap(y)

days_in_month(y, 2) := 28 if not leap(y)

days_in_month(_, m) := 31 if m in {1, 3, 5, 7, 8, 10, 12}

days_in_month(_, m) := 30 if m in {4, 6, 9, 11}

# days_from_civil: days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
days_from_civil(y, m, d) := days if {
	yy := y - to_int(m <= 2)
	era := floor(yy / 400)
	yoe := yy - (era * 400)
	mp := (m + 9) % 12
	doy := (floor(((153 * mp) + 2) / 5) + d) - 1
	doe := (((yoe * 365) + floor(yoe / 4)) - floor(yoe / 100)) + doy
	days := ((era * 146097) + doe) - 719468
}

to_int(true) := 1

to_int(false) := 0

offset_seconds(tz) := 0 if upper(tz) == "Z"

offset_seconds(tz) := secs if {
	upper(tz) != "Z"
	sign := {"+": 1, "-": -1}[substring(tz, 0, 1)]
	h := int(substring(tz, 1, 2))
	m := int(substring(tz, 4, 2))
	h <= 23
	m <= 59
	secs := sign * ((h * 3600) + (m * 60))
}

fraction(f) := 0 if f == ""

fraction(f) := x if {
	f != ""
	digits := substring(f, 1, -1)
	x := int(digits) / pow10[count(digits)]
}

# seconds: seconds since the Unix epoch (possibly fractional) for a valid RFC 3339 timestamp;
# undefined for anything else (wrong type, bad format, impossible date), so callers fail closed.
seconds(ts) := s if {
	is_string(ts)
	m := regex.find_all_string_submatch_n(rfc3339, ts, 1)[0]
	y := int(m[1])
	mo := int(m[2])
	d := int(m[3])
	h := int(m[4])
	mi := int(m[5])
	sec := int(m[6])
	mo >= 1
	mo <= 12
	d >= 1
	d <= days_in_month(y, mo)
	h <= 23
	mi <= 59
	sec <= 60
	local := (((days_from_civil(y, mo, d) * 86400) + (h * 3600)) + (mi * 60)) + sec
	s := (local - offset_seconds(m[8])) + fraction(m[7])
}
