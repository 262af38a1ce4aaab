"""Prints the messages in a Maildir as JSON: what a guardian's mail client would show."""
import email
import email.policy
import json
import mailbox
import sys

messages = []
for message in mailbox.Maildir(sys.argv[1], factory=None, create=False):
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    body = parsed.get_body(preferencelist=("plain",))
    messages.append({
        "to": str(parsed["To"]),
        "from": str(parsed["From"]),
        "subject": str(parsed["Subject"]),
        "message_id": str(parsed["Message-ID"]),
        "text": body.get_content() if body else "",
        "attachments": [
            {"filename": part.get_filename(), "content": part.get_content() if isinstance(part.get_content(), str) else part.get_content().decode()}
            for part in parsed.iter_attachments()
        ],
    })
json.dump(messages, sys.stdout, ensure_ascii=False)
