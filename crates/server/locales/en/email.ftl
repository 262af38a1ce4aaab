email-subscription_confirmed-subject = You are subscribed to { $plan }
email-subscription_confirmed-body = Thank you. Your subscription to { $plan } started on { $date }. Receipt number { $number }. The terms you accepted and every way to end the subscription are on your "My services" page; the signed receipt is attached.
email-cancellation_received-subject = We received your cancellation ({ $number })
email-cancellation_received-body = We received your request to cancel { $plan } on { $received }. It takes effect on { $effective }. Refund: { $refund }. Fee: { $fee }. Receipt number { $number }; the signed receipt is attached.
email-deletion_certificate-subject = Your child's data was deleted ({ $number })
email-deletion_certificate-body = The data you asked us to delete was deleted on { $date }: its encryption key was destroyed first, so no copy, backups included, can be read again. The signed deletion certificate is attached; it lists what was deleted and what the law requires us to keep.
email-footer = Sent by baobao. Anyone can check the attached signed JSON offline with the server's public key (baobao verify).
