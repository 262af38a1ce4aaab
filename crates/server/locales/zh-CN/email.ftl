email-subscription_confirmed-subject = 您已订阅 { $plan }
email-subscription_confirmed-body = 感谢您的订阅。您订阅的 { $plan } 已于 { $date } 开始，回执号 { $number }。您接受的条款以及所有取消方式都在“我的服务”页面；签名回执见附件。
email-cancellation_received-subject = 我们已收到您的取消申请（{ $number }）
email-cancellation_received-body = 我们已于 { $received } 收到您取消 { $plan } 的申请，将于 { $effective } 生效。退款：{ $refund }。费用：{ $fee }。回执号 { $number }；签名回执见附件。
email-deletion_certificate-subject = 孩子的数据已删除（{ $number }）
email-deletion_certificate-body = 您要求删除的数据已于 { $date } 删除：首先销毁了加密密钥，因此任何副本（包括备份）都无法再被读取。签名的删除证明见附件，其中列出了已删除的内容以及法律要求我们保留的内容。
email-footer = 本邮件由宝宝发送。任何人都可以用服务器公钥离线核验附件中的签名 JSON（baobao verify）。
