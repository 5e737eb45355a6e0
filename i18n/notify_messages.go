package i18n

import "maps"

// The notifications' texts (package notify), pushed and kept in the inbox, in the recipient's
// language. Kept apart from the console's messages, and merged into the same catalogues.
func init() {
	maps.Copy(en, notifyEN)
	maps.Copy(zhCN, notifyZH)
}

var notifyEN = map[string]string{
	"notify.month_layout": "January 2006",
	"notify.a_hospital":   "a hospital",
	"notify.another_rep":  "another rep",
	"notify.nobody":       "nobody",
	"notify.the_rep":      "The rep",
	"notify.end":          ".",

	"notify.reported.rep.title":         "Hospital visit: %s",
	"notify.reported.rep.body":          "%s is in hospital at %s (claim %s). Collect the ID card, medical record, invoices and discharge summary.",
	"notify.reported.agent.title":       "Your customer %s is in hospital",
	"notify.reported.agent.body":        "Claim %s was reported: %s is at %s. %s is on the way.",
	"notify.reported.agent.body_nobody": "Claim %s was reported: %s is at %s. No hospital rep is on duty; the branch will assign the visit.",

	"notify.assigned.title": "New task: %s",
	"notify.reopened.title": "Task reopened: %s",
	"notify.assigned.body":  "For %s, claim %s.",
	"notify.assigned.due":   " Due %s.",
	"notify.assigned.at":    " At %s.",

	"notify.unassigned.title":       "Task taken off you: %s",
	"notify.unassigned.body":        "It was given to %s (claim %s, %s). It leaves your device at the next sync.",
	"notify.unassigned.body_nobody": "It is unassigned now (claim %s, %s). It leaves your device at the next sync.",
	"notify.redispatched.title":     "Not accepted in time: %s",
	"notify.redispatched.body":      "It was not accepted within its target, so it was given to %s (claim %s, %s). It leaves your device at the next sync.",

	"notify.overdue.title":        "Overdue: %s",
	"notify.overdue.rep.body":     "This task is past its due time (claim %s, %s).",
	"notify.overdue.manager.body": "Assigned to %s, past its due time (claim %s, %s).",

	"notify.completed.title":      "Task completed: %s",
	"notify.completed.body_ready": "%s completed it (claim %s, %s). The claim is ready for review.",
	"notify.completed.body_open":  "%s completed it (claim %s, %s). %d other task(s) of the claim are still open.",
	"notify.cannot.title":         "Task cannot be completed: %s",
	"notify.cannot.body":          "%s: %s (claim %s, %s).",

	"notify.rejected.title": "Document rejected: %s for %s",
	"notify.rejected.body":  "%s. Please collect the %s again (claim %s).",

	"notify.doc.id_card":           "ID card",
	"notify.doc.medical_record":    "medical record",
	"notify.doc.invoice":           "invoice",
	"notify.doc.discharge_summary": "discharge summary",
	"notify.doc.photo":             "photo",
	"notify.doc.other":             "document",

	"notify.claim_kind.hospitalisation": "hospitalisation",
	"notify.claim_kind.accident":        "accident",
	"notify.claim_kind.illness":         "illness",
	"notify.claim_kind.death":           "death",
	"notify.claim_kind.other":           "insurance",

	"notify.settled.title": "Claim settled: %s",
	"notify.settled.body":  "%s's %s claim was paid: %s.",
	"notify.paid.title":    "Claim paid: %s, %s",
	"notify.paid.body":     "%s paid to %s",
	"notify.paid.premium":  " (%s of the %s premium)",
	"notify.paid.period":   ". Paid in %s: %s on %d claim(s)",
	"notify.paid.ratio":    "; %s of the premiums where known",
}

var notifyZH = map[string]string{
	"notify.month_layout": "2006年1月",
	"notify.a_hospital":   "医院",
	"notify.another_rep":  "另一位代表",
	"notify.nobody":       "无人",
	"notify.the_rep":      "代表",
	"notify.end":          "。",

	"notify.reported.rep.title":         "医院探访：%s",
	"notify.reported.rep.body":          "%s 正在%s住院（理赔 %s）。请收集身份证、病历、发票和出院小结。",
	"notify.reported.agent.title":       "您的客户 %s 已住院",
	"notify.reported.agent.body":        "理赔 %s 已报案：%s 在%s。%s 正在前往。",
	"notify.reported.agent.body_nobody": "理赔 %s 已报案：%s 在%s。目前没有值班的医院代表，分公司将安排探访。",

	"notify.assigned.title": "新任务：%s",
	"notify.reopened.title": "任务已重新打开：%s",
	"notify.assigned.body":  "客户 %s，理赔 %s。",
	"notify.assigned.due":   "截止时间 %s。",
	"notify.assigned.at":    "地点：%s。",

	"notify.unassigned.title":       "任务已从您名下移除：%s",
	"notify.unassigned.body":        "已转给 %s（理赔 %s，%s）。下次同步时将从您的设备上移除。",
	"notify.unassigned.body_nobody": "现在无人负责（理赔 %s，%s）。下次同步时将从您的设备上移除。",
	"notify.redispatched.title":     "未及时接受：%s",
	"notify.redispatched.body":      "未在目标时间内接受，已转给 %s（理赔 %s，%s）。下次同步时将从您的设备上移除。",

	"notify.overdue.title":        "已逾期：%s",
	"notify.overdue.rep.body":     "此任务已超过截止时间（理赔 %s，%s）。",
	"notify.overdue.manager.body": "负责人 %s，已超过截止时间（理赔 %s，%s）。",

	"notify.completed.title":      "任务已完成：%s",
	"notify.completed.body_ready": "%s 已完成（理赔 %s，%s）。该理赔可以审核了。",
	"notify.completed.body_open":  "%s 已完成（理赔 %s，%s）。该理赔还有 %d 个任务未完成。",
	"notify.cannot.title":         "任务无法完成：%s",
	"notify.cannot.body":          "%s：%s（理赔 %s，%s）。",

	"notify.rejected.title": "单据被退回：%s（%s）",
	"notify.rejected.body":  "%s。请重新收集%s（理赔 %s）。",

	"notify.doc.id_card":           "身份证",
	"notify.doc.medical_record":    "病历",
	"notify.doc.invoice":           "发票",
	"notify.doc.discharge_summary": "出院小结",
	"notify.doc.photo":             "照片",
	"notify.doc.other":             "单据",

	"notify.claim_kind.hospitalisation": "住院",
	"notify.claim_kind.accident":        "意外",
	"notify.claim_kind.illness":         "疾病",
	"notify.claim_kind.death":           "身故",
	"notify.claim_kind.other":           "保险",

	"notify.settled.title": "理赔已结案：%s",
	"notify.settled.body":  "%s 的%s理赔已赔付：%s。",
	"notify.paid.title":    "理赔已赔付：%s，%s",
	"notify.paid.body":     "赔付 %s 给 %s",
	"notify.paid.premium":  "（为 %s，保费 %s）",
	"notify.paid.period":   "。%s 已赔付：%s，共 %d 笔理赔",
	"notify.paid.ratio":    "；已知保费的赔付率为 %s",
}
