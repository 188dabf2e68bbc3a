package verdict.data_access_test

import data.verdict.testing as t

base := {
	"subject": {"type": "user", "id": "analyst-7", "properties": {"clearance": "confidential"}},
	"action": {"name": "data.read"},
	"resource": {"type": "dataset", "id": "support-tickets-2026", "properties": {
		"classification": "confidential",
		"contains_pii": true,
		"allowed_purposes": ["support", "quality_assurance"],
		"allowed_regions": ["eu-west-1", "eu-central-1"],
		"customer_data": true,
		"training_consent": false,
	}},
	"context": {"purpose": "support", "region": "eu-west-1"},
	"caller": t.caller,
	"now": t.now,
}

with_(patch) := object.union(base, patch)

props(p) := with_({"resource": {"properties": p}})

test_base_allowed if t.allowed(base)

test_data_entrypoint if {
	r := data.verdict.data.decision with input as base
	r.allow == true
}

# DATA-001 ---------------------------------------------------------------------------------------

test_data_001_purpose_allowed if t.clean(with_({"context": {"purpose": "quality_assurance"}}), "DATA-001")

test_data_001_no_pii_any_purpose if t.clean(props({"contains_pii": false, "allowed_purposes": []}), "DATA-001")

test_data_001_purpose_not_allowed if {
	t.denied(with_({"context": {"purpose": "marketing"}}), "DATA-001")
	t.denied(json.remove(base, ["context/purpose"]), "DATA-001")
	t.denied(with_({"context": {"purpose": ["support"]}}), "DATA-001")
	t.denied(json.remove(base, ["resource/properties/allowed_purposes"]), "DATA-001")
	t.denied(props({"allowed_purposes": "support"}), "DATA-001")
}

test_data_001_non_boolean_pii_flag_counts_as_pii if {
	t.denied(object.union(props({"contains_pii": "no"}), {"context": {"purpose": "marketing"}}), "DATA-001")
}

# DATA-002 ---------------------------------------------------------------------------------------

test_data_002_clearance_dominates if {
	t.clean(base, "DATA-002")
	t.clean(with_({"subject": {"properties": {"clearance": "restricted"}}}), "DATA-002")
	t.clean(props({"classification": "public"}), "DATA-002")
}

test_data_002_clearance_too_low if {
	t.denied(with_({"subject": {"properties": {"clearance": "internal"}}}), "DATA-002")
	t.denied(object.union(props({"classification": "restricted"}), {}), "DATA-002")
}

test_data_002_missing_or_unknown_clearance if {
	t.denied(json.remove(base, ["subject/properties/clearance"]), "DATA-002")
	t.denied(json.remove(base, ["subject/properties"]), "DATA-002")
	t.denied(with_({"subject": {"properties": {"clearance": "top-secret"}}}), "DATA-002")
	t.denied(with_({"subject": {"properties": {"clearance": 3}}}), "DATA-002")
}

test_data_002_missing_or_unknown_classification_is_restricted if {
	t.denied(json.remove(base, ["resource/properties/classification"]), "DATA-002")
	t.denied(props({"classification": "secret"}), "DATA-002")
	t.denied(props({"classification": 0}), "DATA-002")
	t.clean(json.remove(with_({"subject": {"properties": {"clearance": "restricted"}}}), ["resource/properties/classification"]), "DATA-002")
}

# DATA-003 ---------------------------------------------------------------------------------------

test_data_003_region_allowed if {
	t.clean(base, "DATA-003")
	t.clean(json.remove(base, ["resource/properties/allowed_regions"]), "DATA-003")
}

test_data_003_region_not_allowed if {
	t.denied(with_({"context": {"region": "us-east-1"}}), "DATA-003")
	t.denied(json.remove(base, ["context/region"]), "DATA-003")
	t.denied(props({"allowed_regions": "eu-west-1"}), "DATA-003")
	t.denied(props({"allowed_regions": null}), "DATA-003")
	t.denied(props({"allowed_regions": []}), "DATA-003")
}

# DATA-004 ---------------------------------------------------------------------------------------

training := object.union(props({"allowed_purposes": ["training"]}), {"context": {"purpose": "training"}})

test_data_004_training_with_consent if t.allowed(object.union(training, {"resource": {"properties": {"training_consent": true}}}))

test_data_004_non_customer_data_for_training if t.clean(object.union(training, {"resource": {"properties": {"customer_data": false}}}), "DATA-004")

test_data_004_training_without_consent if {
	t.denied(training, "DATA-004")
	t.denied(json.remove(training, ["resource/properties/training_consent"]), "DATA-004")
	t.denied(object.union(training, {"resource": {"properties": {"training_consent": "true"}}}), "DATA-004")
	t.denied(object.union(training, {"context": {"purpose": " Training"}}), "DATA-004")
	t.denied(object.union(training, {"resource": {"properties": {"customer_data": "yes"}}}), "DATA-004")
}
