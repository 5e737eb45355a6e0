package sync

// The domain's enumerations. Each is a string type, so that a status of one entity cannot be
// compared with another's by mistake; the values are the wire's (the records' fields, the tables'
// columns, the OpenAPI description's enums), and the lists below are their one definition.

// TaskStatus is where a task stands.
type TaskStatus string

const (
	TaskOpen           TaskStatus = "open"
	TaskAssigned       TaskStatus = "assigned"
	TaskAccepted       TaskStatus = "accepted"
	TaskInProgress     TaskStatus = "in_progress"
	TaskCompleted      TaskStatus = "completed"
	TaskCannotComplete TaskStatus = "cannot_complete"
	TaskCancelled      TaskStatus = "cancelled"
)

// Finished reports whether the task's work is over: done, given up or called off. A finished task
// is reopened, not carried on; its completion fields freeze (TaskMachine.Frozen).
func (s TaskStatus) Finished() bool {
	return s == TaskCompleted || s == TaskCannotComplete || s == TaskCancelled
}

// ClaimStatus is where a claim stands, from its report to its settlement.
type ClaimStatus string

const (
	ClaimReported    ClaimStatus = "reported"
	ClaimCollecting  ClaimStatus = "collecting"
	ClaimUnderReview ClaimStatus = "under_review"
	ClaimApproved    ClaimStatus = "approved"
	ClaimPaid        ClaimStatus = "paid"
	ClaimRejected    ClaimStatus = "rejected"
)

// DocumentStatus is where a document stands, from its record to its review.
type DocumentStatus string

const (
	DocumentPendingUpload DocumentStatus = "pending_upload"
	DocumentUploaded      DocumentStatus = "uploaded"
	DocumentApproved      DocumentStatus = "approved"
	DocumentRejected      DocumentStatus = "rejected"
)

// Deletable reports whether a rep may delete the document: one still waiting for its file, or one
// rejected (to take it again). An uploaded one is kept for review.
func (s DocumentStatus) Deletable() bool {
	return s == DocumentPendingUpload || s == DocumentRejected
}

// TaskKind is what a task asks of its rep.
type TaskKind string

const (
	TaskHospitalVisit      TaskKind = "hospital_visit"
	TaskDocumentCollection TaskKind = "document_collection"
	TaskFollowUp           TaskKind = "follow_up"
)

// TaskKinds are the kinds of task, in the order the description lists them.
var TaskKinds = []TaskKind{TaskHospitalVisit, TaskDocumentCollection, TaskFollowUp}

// ClaimKind is what happened to the customer.
type ClaimKind string

const (
	ClaimHospitalisation ClaimKind = "hospitalisation"
	ClaimAccident        ClaimKind = "accident"
	ClaimIllness         ClaimKind = "illness"
	ClaimDeath           ClaimKind = "death"
	ClaimOther           ClaimKind = "other"
)

// ClaimKinds are the kinds of claim, in the order the description lists them.
var ClaimKinds = []ClaimKind{ClaimHospitalisation, ClaimAccident, ClaimIllness, ClaimDeath, ClaimOther}

// DocumentKind is what a document is a picture or scan of.
type DocumentKind string

const (
	DocumentIDCard           DocumentKind = "id_card"
	DocumentMedicalRecord    DocumentKind = "medical_record"
	DocumentInvoice          DocumentKind = "invoice"
	DocumentDischargeSummary DocumentKind = "discharge_summary"
	DocumentPhoto            DocumentKind = "photo"
	DocumentOther            DocumentKind = "other"
)

// DocumentKinds are the kinds of document, in the order the description lists them.
var DocumentKinds = []DocumentKind{DocumentIDCard, DocumentMedicalRecord, DocumentInvoice, DocumentDischargeSummary,
	DocumentPhoto, DocumentOther}

// Enums returns every enumeration of the records, by "<type>.<field>" (task.status, claim.kind...),
// with its values in order: the OpenAPI description takes its enums from here.
func Enums() map[string][]string {
	return map[string][]string{
		TypeTask + ".status":     TaskMachine.Strings(),
		TypeClaim + ".status":    ClaimMachine.Strings(),
		TypeDocument + ".status": DocumentMachine.Strings(),
		TypeTask + ".kind":       stringsOf(TaskKinds),
		TypeClaim + ".kind":      stringsOf(ClaimKinds),
		TypeDocument + ".kind":   stringsOf(DocumentKinds),
	}
}

// stringsOf returns values as plain strings, for the field definitions and the description.
func stringsOf[S ~string](values []S) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}
