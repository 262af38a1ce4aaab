email-subscription_confirmed-subject = You are subscribed to { $plan }
email-subscription_confirmed-body = Thank you. Your subscription to { $plan } started on { $date }. Receipt number { $number }. The terms you accepted and every way to end the subscription are on your "My services" page; the signed receipt is attached.
email-cancellation_received-subject = We received your cancellation ({ $number })
email-cancellation_received-body = We received your request to cancel { $plan } on { $received }. It takes effect on { $effective }. Refund: { $refund }. Fee: { $fee }. Receipt number { $number }; the signed receipt is attached.
email-deletion_certificate-subject = Your child's data was deleted ({ $number })
email-deletion_certificate-body = The data you asked us to delete was deleted on { $date }: its encryption key was destroyed first, so no copy, backups included, can be read again. The signed deletion certificate is attached; it lists what was deleted and what the law requires us to keep.
email-footer = Sent by baobao. Anyone can check the attached signed JSON offline with the server's public key (baobao verify).
email-renewal_reminder-subject = { $plan } renews on { $renews }
email-renewal_reminder-body = Your subscription to { $plan } renews on { $renews } for { $price }. If you do not want it to renew, cancel by { $cancel_by } on your "My services" page; it takes three pages and you get a signed receipt.
email-cancellation_received-body-ended = We received your request to cancel { $plan } on { $received }. It took effect on { $effective }: nothing more will be charged. Refund: { $refund }. Fee: { $fee }. Receipt number { $number }; the signed receipt is attached.
email-cancellation_effective-subject = { $plan } has ended
email-cancellation_effective-body = Your subscription to { $plan } ended on { $ended }, as you asked. Nothing more will be charged. Your child's data stays available for export on the "Children's data" page until it is deleted as the terms say.
email-refund_issued-subject = A refund for { $plan }
email-refund_issued-body = We have refunded the following for { $plan }:
    { $refunds }
    It goes back to the way you paid; your statement shows it.
email-refund_issued-after-request = Why: your cancellation request reached us before this period began, so the renewal should not have been charged. We registered your request late, and we are sorry.
email-refund-line = Refund of { $amount }
email-refund-line-period = Refund of { $amount } for the period starting { $period }
email-verification_code-subject = Your baobao verification code: { $code }
email-verification_code-body = A support agent asked to verify that they are speaking with you. If you are on the phone with our support, read them this code: { $code }. It works once, for { $minutes } minutes. If you did not contact support, ignore this email: nothing changes without the code.
email-refund_failed-subject = Your refund for { $plan } has not gone through yet
email-refund_failed-body = We tried several times to send you a refund for { $plan }, and the payment provider has not accepted it yet:
    { $refunds }
    Our finance team has it now and will send it another way; you do not need to do anything. Your statement shows its status.
email-refund-reference = Payment reference: { $reference }
email-renewal_reminder-body-late = The last day to cancel { $plan } without another renewal was { $cancel_by }; we are sorry this reminder comes late. It renews on { $renews } for { $price }. If you cancel now, it ends on { $ends }, after that one more renewal. Cancelling takes three pages on your "My services" page, with a signed receipt.
email-renewal_reminder-body-trial = Your free trial of { $plan } becomes paid on { $renews }: { $price } for each period. If you do not want that, cancel by { $cancel_by } on your "My services" page; it takes three pages and you get a signed receipt.
email-cancellation_effective-body-fee = Your subscription to { $plan } ended on { $ended }, as you asked. The early-termination fee of { $fee } that your quote named is charged now; nothing else will be. Your statement shows the fee and its receipt. Your child's data stays available for export on the "Children's data" page until it is deleted as the terms say.
email-deletion_certificate-body-retention = As the terms of your ended subscription say, your child's data was deleted on { $date }, when its retention period ran out: its encryption key was destroyed first, so no copy, backups included, can be read again. The signed deletion certificate is attached; it lists what was deleted and what the law requires us to keep.
email-provider-contact = Questions: { $contact }
email-provider-letters = Letters: { $address }
email-provider-complaints = Not settled with us? { $route }
email-receipt-link = See this receipt online: { $link }
email-payment_received-subject = Payment received for { $plan } ({ $number })
email-payment_received-body = We charged { $charge } for { $plan }, for the period { $period_start } to { $period_end }. Payment reference: { $reference }. Receipt number { $number }; the signed receipt is attached. It renews next on { $renews }; we will remind you before the last day to cancel, and you can cancel on your "My services" page at any time.
email-fee_charged-subject = Early-termination fee for { $plan } ({ $number })
email-fee_charged-body = We charged the early-termination fee of { $fee } for { $plan }, as named in the quote you accepted when you cancelled. Nothing else will be charged for this subscription. Payment reference: { $reference }. Receipt number { $number }; the signed receipt is attached.
email-deletion_certificate-body-child = As you asked, your child was removed from your account on { $date } and their data deleted: every record of theirs, in every service, and their name and date of birth (who consented, and when, is kept as the law requires). The data keys of your other children's records were replaced and the old ones destroyed, so no copy of the removed child's records, backups included, can be read again. The signed deletion certificate is attached.
email-complain = Something went wrong? Complain: { $link }
email-dispute-link = Follow your complaint, add to it or download its dossier: { $link }
email-dispute_filed-subject = We have your complaint ({ $number })
email-dispute_filed-body-open = We have your complaint about "{ $dispute_kind }" and checked our records first: they do not settle it, so { $level } answers you by { $due } at the latest. Reference { $number }; the signed receipt of your complaint is attached. Every step will be on the complaint's page.
email-dispute_filed-body-settled = We have your complaint about "{ $dispute_kind }" and our records settle it at once: { $outcome }. The complaint's page shows what we checked and what we did. Reference { $number }; the signed receipt is attached. If this does not settle it for you, reply on the complaint's page and a person takes it from there.
email-dispute_message-subject = A reply to your complaint
email-dispute_message-body = Our { $level } replied to your complaint:
    { $message }
email-dispute_escalated-subject = Your complaint went to { $level }
email-dispute_escalated-body = Your complaint is now with { $level }, who answer by { $due } at the latest. Why: { $message }
email-dispute_escalated-body-overdue = We missed a deadline on your complaint, and we are sorry: it went to { $level } at once, who answer by { $due } at the latest.
email-dispute_resolved-subject = Your complaint is closed: { $outcome }
email-dispute_resolved-body = Your complaint is closed: { $outcome }.
    { $message }
    If you do not agree, you can hand the complaint's dossier (a ZIP on its page, signed by us) to a mediator or a consumer association.
email-dispute_guardian_wrote-subject = A guardian wrote on dispute { $dispute_id }
email-dispute_guardian_wrote-body = The guardian added to dispute { $dispute_id } (now with { $level }). Read it in the console.
email-dispute_code-subject = Your code to file a complaint: { $code }
email-dispute_code-body = Someone asked to file a complaint with a receipt of ours and this email address. If it was you, enter this code: { $code }. It works once, for { $minutes } minutes. If it was not you, ignore this email.
dispute-kind-wrong_charge = a wrong charge
dispute-kind-charge_after_cancellation = a charge after cancelling
dispute-kind-cancellation_ignored = a cancellation not acted on
dispute-kind-refund_missing = a refund that did not come
dispute-kind-data_not_deleted = data not deleted
dispute-kind-other = something else
dispute-level-support = support
dispute-level-supervisor = a supervisor
dispute-level-external_mediation = external mediation
dispute-level-legal = the legal department
dispute-outcome-refunded = refunded
dispute-outcome-answered_from_records = answered from the records
dispute-outcome-upheld = upheld
dispute-outcome-rejected = not upheld
dispute-outcome-withdrawn = withdrawn by you
