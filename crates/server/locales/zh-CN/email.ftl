email-subscription_confirmed-subject = 您已订阅 { $plan }
email-subscription_confirmed-body = 感谢您的订阅。您订阅的 { $plan } 已于 { $date } 开始，回执号 { $number }。您接受的条款以及所有取消方式都在“我的服务”页面；签名回执见附件。
email-cancellation_received-subject = 我们已收到您的取消申请（{ $number }）
email-cancellation_received-body = 我们已于 { $received } 收到您取消 { $plan } 的申请，将于 { $effective } 生效。退款：{ $refund }。费用：{ $fee }。回执号 { $number }；签名回执见附件。
email-deletion_certificate-subject = 孩子的数据已删除（{ $number }）
email-deletion_certificate-body = 您要求删除的数据已于 { $date } 删除：首先销毁了加密密钥，因此任何副本（包括备份）都无法再被读取。签名的删除证明见附件，其中列出了已删除的内容以及法律要求我们保留的内容。
email-footer = 本邮件由宝宝发送。任何人都可以用服务器公钥离线核验附件中的签名 JSON（baobao verify）。
email-renewal_reminder-subject = { $plan } 将于 { $renews } 续费
email-renewal_reminder-body = 您订阅的 { $plan } 将于 { $renews } 自动续费，费用 { $price }。如不想续费，请在 { $cancel_by } 之前在“我的服务”页面取消；只需三个页面，并会收到签名回执。
email-cancellation_received-body-ended = 我们已于 { $received } 收到您取消 { $plan } 的申请，已于 { $effective } 生效：此后不会再产生任何费用。退款：{ $refund }。费用：{ $fee }。回执号 { $number }；签名回执见附件。
email-cancellation_effective-subject = { $plan } 已结束
email-cancellation_effective-body = 按照您的申请，您订阅的 { $plan } 已于 { $ended } 结束，此后不会再产生任何费用。在按条款删除之前，您仍可在“孩子的数据”页面导出孩子的数据。
email-refund_issued-subject = { $plan } 的退款
email-refund_issued-body = 我们已为 { $plan } 退还以下款项：
    { $refunds }
    款项将原路退回；您的账单中可以查到。
email-refund_issued-after-request = 原因：您的取消申请在该周期开始之前就已送达，本不应扣除续费。我们登记晚了，深表歉意。
email-refund-line = 退款 { $amount }
email-refund-line-period = 退款 { $amount }（自 { $period } 开始的周期）
email-verification_code-subject = 您的宝宝验证码：{ $code }
email-verification_code-body = 客服人员请求确认正在与您本人通话。如果您正在与我们的客服通话，请告诉对方此验证码：{ $code }。验证码仅可使用一次，{ $minutes } 分钟内有效。如果您没有联系客服，请忽略此邮件：没有验证码不会有任何变更。
email-refund_failed-subject = 您的 { $plan } 退款尚未完成
email-refund_failed-body = 我们已多次尝试向您退还 { $plan } 的款项，但支付机构尚未受理：
    { $refunds }
    财务人员已接手处理，会通过其他方式退还给您，您无需采取任何行动。账单中可以查看其状态。
email-refund-reference = 付款参考号：{ $reference }
email-renewal_reminder-body-late = 不续费的最后取消日期 { $cancel_by } 已过，很抱歉这封提醒晚到了。{ $plan } 将于 { $renews } 续费，费用 { $price }。如现在取消，服务将在再续费一次后于 { $ends } 结束。在“我的服务”页面取消只需三步，并会获得签名回执。
email-renewal_reminder-body-trial = 您的 { $plan } 免费试用将于 { $renews } 转为付费：每个周期 { $price }。如不需要，请在 { $cancel_by } 前在“我的服务”页面取消；只需三步，并会获得签名回执。
email-cancellation_effective-body-fee = 按照您的申请，您订阅的 { $plan } 已于 { $ended } 结束。报价中列明的提前解约费 { $fee } 现在收取，此外不会再产生任何费用。账单中可以查看该费用及其回执。在按条款删除之前，您仍可在“孩子的数据”页面导出孩子的数据。
email-deletion_certificate-body-retention = 根据您已结束订阅的条款，孩子的数据在保留期满后已于 { $date } 删除：首先销毁了加密密钥，因此任何副本（包括备份）都无法再被读取。签名的删除证明见附件，其中列出了已删除的内容以及法律要求我们保留的内容。
email-provider-contact = 如有疑问：{ $contact }
email-provider-letters = 书面通知请寄：{ $address }
email-provider-complaints = 未能与我们解决？{ $route }
email-receipt-link = 在线查看此回执：{ $link }
email-payment_received-subject = 已收到 { $plan } 的付款（{ $number }）
email-payment_received-body = 我们已为 { $plan } 收取 { $charge }，对应 { $period_start } 至 { $period_end } 的周期。支付流水号：{ $reference }。回执编号 { $number }，签名回执见附件。下次续订日期为 { $renews }；在取消截止日之前我们会提醒您，您也可以随时在“我的服务”页面取消。
email-fee_charged-subject = { $plan } 的提前解约费（{ $number }）
email-fee_charged-body = 按照您取消时所接受的报价，我们已为 { $plan } 收取提前解约费 { $fee }。此订阅不会再有其他收费。支付流水号：{ $reference }。回执编号 { $number }，签名回执见附件。
email-deletion_certificate-body-child = 按照您的要求，您的孩子已于 { $date } 从您的账户中移除，其数据已删除：该孩子在所有服务中的全部记录，以及其姓名和出生日期（依法保留由谁、何时同意的记录）。您其他孩子记录的数据密钥已更换、旧密钥已销毁，因此被移除孩子的记录的任何副本（包括备份）都无法再被读取。签名删除证明见附件。
email-complain = 遇到问题？投诉：{ $link }
email-dispute-link = 查看投诉进展、补充内容或下载投诉材料包：{ $link }
email-dispute_filed-subject = 我们已收到您的投诉（{ $number }）
email-dispute_filed-body-open = 我们已收到您关于“{ $dispute_kind }”的投诉，并先核对了我们的记录：记录无法直接解决此事，因此将由{ $level }最迟在 { $due } 前答复您。编号 { $number }；投诉的签名回执见附件。每一步都会显示在投诉页面上。
email-dispute_filed-body-settled = 我们已收到您关于“{ $dispute_kind }”的投诉，我们的记录可以直接解决：{ $outcome }。投诉页面列出了我们核对的记录和所做的处理。编号 { $number }；签名回执见附件。如果您认为问题仍未解决，请在投诉页面回复，将由专人继续处理。
email-dispute_message-subject = 您的投诉有了回复
email-dispute_message-body = { $level }回复了您的投诉：
    { $message }
email-dispute_escalated-subject = 您的投诉已转交{ $level }
email-dispute_escalated-body = 您的投诉现由{ $level }处理，最迟在 { $due } 前答复。原因：{ $message }
email-dispute_escalated-body-overdue = 我们错过了您投诉的处理期限，非常抱歉：投诉已立即转交{ $level }，最迟在 { $due } 前答复。
email-dispute_resolved-subject = 您的投诉已结案：{ $outcome }
email-dispute_resolved-body = 您的投诉已结案：{ $outcome }。
    { $message }
    如您不同意，可将投诉材料包（投诉页面上的 ZIP 文件，由我们签名）交给调解机构或消费者协会（例如 12315）。
email-dispute_guardian_wrote-subject = 家长在投诉 { $dispute_id } 中留言
email-dispute_guardian_wrote-body = 家长在投诉 { $dispute_id } 中补充了内容（现由{ $level }处理）。请在控制台查看。
email-dispute_code-subject = 您提交投诉的验证码：{ $code }
email-dispute_code-body = 有人使用我们的回执和此邮箱地址申请提交投诉。如果是您本人，请输入验证码：{ $code }。验证码仅可使用一次，{ $minutes } 分钟内有效。如果不是您，请忽略此邮件。
dispute-kind-wrong_charge = 错误扣费
dispute-kind-charge_after_cancellation = 取消后仍被扣费
dispute-kind-cancellation_ignored = 取消申请未被处理
dispute-kind-refund_missing = 退款未到账
dispute-kind-data_not_deleted = 数据未删除
dispute-kind-other = 其他问题
dispute-level-support = 客服
dispute-level-supervisor = 客服主管
dispute-level-external_mediation = 外部调解
dispute-level-legal = 法务部门
dispute-outcome-refunded = 已退款
dispute-outcome-answered_from_records = 已按记录答复
dispute-outcome-upheld = 投诉成立
dispute-outcome-rejected = 投诉不成立
dispute-outcome-withdrawn = 您已撤回
