package system.log_test

import data.system.log

event(inp) := {"decision_id": "d1", "path": "verdict/decision", "input": inp, "result": {"allow": false}}

test_mask_secrets_and_pii if {
	inp := {
		"subject": {"type": "agent", "id": "support-bot", "properties": {"email": "bot@example.com"}},
		"action": {"name": "tool.call"},
		"resource": {"type": "tool", "id": "http_get", "properties": {"arguments": {
			"url": "https://api.github.com",
			"api_key": "sk-123",
			"Authorization": "Bearer x",
			"a/b~token": "t",
			"query": "x",
		}}},
		"context": {"user": {"id": "user:42", "email": "u@example.com", "phone": "+1"}, "approval": {"token": "abc"}, "headers": {"Cookie": "s=1", "Accept": "*/*"}},
	}
	log.mask == [
		"/input/context/approval/token",
		"/input/context/headers/Cookie",
		"/input/context/user/email",
		"/input/context/user/phone",
		"/input/resource/properties/arguments/Authorization",
		"/input/resource/properties/arguments/api_key",
		"/input/resource/properties/arguments/a~1b~0token",
		"/input/subject/properties/email",
	] with input as event(inp)
}

test_mask_nothing_to_mask if {
	log.mask == [] with input as event(data.verdict.tool_test.base)
	log.mask == [] with input as event("x")
	log.mask == [] with input as {}
}
