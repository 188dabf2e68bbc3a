# Dataset access (DATA-001..DATA-004)
# action.name == "data.read", resource.type == "dataset".
package verdict.data

import data.verdict.exceptions
import data.verdict.lib

in_scope if {
	input.action.name == "data.read"
	input.resource.type == "dataset"
}

decision := exceptions.decide(violations | lib.envelope_violations, set()) if in_scope

decision := exceptions.deny_out_of_scope if not in_scope

# props defaults to {} so that negated checks on missing fields work (see lib.get).
props := input.resource.properties if is_object(input.resource.properties)

else := {}

levels := {"public": 0, "internal": 1, "confidential": 2, "restricted": 3}

# A flag counts as set when it is true or present with a non-boolean value (fail closed).
flag(obj, key) if lib.get(obj, key) == true

flag(obj, key) if {
	lib.present(obj, key)
	not is_boolean(obj[key])
}

# ---------------------------------------------------------------------------------------------
# DATA-001: purpose limitation for personal data.

violations contains {
	"control": "DATA-001",
	"message": "purpose is not among the dataset's allowed purposes for personal data",
	"severity": "high",
} if {
	flag(props, "contains_pii")
	not purpose_allowed
}

purpose_allowed if {
	lib.non_empty_string(input.context.purpose)
	is_array(props.allowed_purposes)
	some p in props.allowed_purposes
	p == input.context.purpose
}

# ---------------------------------------------------------------------------------------------
# DATA-002: clearance dominates classification. Missing/unknown clearance denies; a missing or
# unknown classification counts as restricted.

clearance := levels[input.subject.properties.clearance] if is_string(input.subject.properties.clearance)

classification := levels[c] if {
	c := lib.get(props, "classification")
	is_string(c)
	levels[c]
} else := 3

violations contains {
	"control": "DATA-002",
	"message": "subject clearance is missing or unknown",
	"severity": "high",
} if not clearance

violations contains {
	"control": "DATA-002",
	"message": "subject clearance is below the dataset classification",
	"severity": "high",
} if clearance < classification

# ---------------------------------------------------------------------------------------------
# DATA-003: residency. When the dataset lists allowed_regions, context.region must be one of them.

violations contains {
	"control": "DATA-003",
	"message": "region is not among the dataset's allowed regions",
	"severity": "high",
} if {
	lib.present(props, "allowed_regions")
	not region_allowed
}

region_allowed if {
	is_array(props.allowed_regions)
	lib.non_empty_string(input.context.region)
	some r in props.allowed_regions
	r == input.context.region
}

# ---------------------------------------------------------------------------------------------
# DATA-004: customer data is used for training only with consent.

violations contains {
	"control": "DATA-004",
	"message": "customer data may not be used for training without consent",
	"severity": "high",
} if {
	lib.norm(input.context.purpose) == "training"
	flag(props, "customer_data")
	not lib.get(props, "training_consent") == true
}
