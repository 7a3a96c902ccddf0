package relay

import (
	"encoding/json"
	"net/http"

	"github.com/amana-relay/amana/relay/api"
)

// apiError is an error answer. Its text is written for the person at the
// other end and never carries internal detail.
type apiError struct {
	Status int
	Body   api.Error
}

func (e *apiError) Error() string { return e.Body.Code + ": " + e.Body.Message }

// The stable error codes of the API. docs/protocol.md lists them.
var (
	errBadRequest = &apiError{Status: 400, Body: api.Error{Code: "bad_request", Message: "The request is malformed.",
		Hint: "Check the request against docs/protocol.md."}}
	errNotAge = &apiError{Status: 400, Body: api.Error{Code: "not_age", Message: "The body is not an age-encrypted file.",
		Hint: "Encrypt the submission with age to the desk's recipients before sending it."}}
	errStanzas = &apiError{Status: 400, Body: api.Error{Code: "wrong_recipients", Message: "The file is not encrypted to this category's handlers.",
		Hint: "Fetch the desk manifest again and encrypt to exactly the recipients of the category you chose."}}
	errTruncated = &apiError{Status: 400, Body: api.Error{Code: "bad_length", Message: "The declared length does not match a complete age file.",
		Hint: "Declare the exact length of the encrypted file."}}
	errUnknownDesk = &apiError{Status: 404, Body: api.Error{Code: "unknown_desk", Message: "There is no desk with this name here.",
		Hint: "Check the desk name, or list the desks at /api/v1/desks."}}
	errUnknownCategory = &apiError{Status: 400, Body: api.Error{Code: "unknown_category", Message: "This desk has no such category.",
		Hint: "Choose a category listed in the desk manifest, or none."}}
	errTooLarge = &apiError{Status: 413, Body: api.Error{Code: "too_large", Message: "The submission is larger than this desk accepts.",
		Hint: "Send fewer or smaller files, or split them over several submissions."}}
	errPieceTooLarge = &apiError{Status: 413, Body: api.Error{Code: "piece_too_large", Message: "The piece is larger than the relay accepts in one request.",
		Hint: "Send the upload in smaller pieces; ask for the current offset and continue from there."}}
	errTooLong = &apiError{Status: 400, Body: api.Error{Code: "too_long", Message: "More bytes were sent than the upload declared.",
		Hint: "Ask for the current offset and send only the remaining bytes."}}
	errQuota = &apiError{Status: 507, Body: api.Error{Code: "storage_full", Message: "The relay cannot store more submissions right now.",
		Hint: "Please try again later. What the relay confirmed before is kept."}}
	errNotFound = &apiError{Status: 404, Body: api.Error{Code: "not_found", Message: "Not found.",
		Hint: "Check the address. An unfinished upload expires after a day without progress; then start it again."}}
	errIdempotency = &apiError{Status: 422, Body: api.Error{Code: "idempotency_conflict", Message: "This idempotency key was already used for a different submission.",
		Hint: "Send a new submission with a new key; resend with the same key only the same bytes."}}
	errIdemKey = &apiError{Status: 400, Body: api.Error{Code: "bad_idempotency_key", Message: "The Amana-Idempotency-Key header is malformed.",
		Hint: "Use 16 to 64 characters from A-Z, a-z, 0-9, '-' and '_', made from at least 16 random bytes."}}
	errIncomplete = &apiError{Status: 409, Body: api.Error{Code: "incomplete", Message: "The upload is not complete yet.",
		Hint: "Ask for the current offset and send the remaining bytes before completing."}}
	errUnauthorized = &apiError{Status: 401, Body: api.Error{Code: "unauthorized", Message: "The request is not authorized.",
		Hint: "Sign requests with a handler key listed in the desk manifest, and check your clock."}}
	errStaleSerial = &apiError{Status: 409, Body: api.Error{Code: "stale_serial", Message: "The relay already has this desk at the same or a newer serial.",
		Hint: "Create the manifest again with a higher --serial."}}
	errBadManifest = &apiError{Status: 400, Body: api.Error{Code: "bad_manifest", Message: "The desk manifest is invalid or not signed by this relay's admin key.",
		Hint: "Sign the manifest with the admin key given to amana-relay init."}}
	errLengthRequired = &apiError{Status: 411, Body: api.Error{Code: "length_required", Message: "The request needs a Content-Length.",
		Hint: "Send the body with its length."}}
	errInternal = &apiError{Status: 500, Body: api.Error{Code: "internal", Message: "The relay could not complete the request.",
		Hint: "Nothing you sent was kept unless you were told so. Please try again later."}}
	errUseUpload = &apiError{Status: 413, Body: api.Error{Code: "use_upload", Message: "The submission is too large for a single request.",
		Hint: "Use the resumable upload API (POST /api/v1/desks/{desk}/uploads)."}}
	errRange = &apiError{Status: 416, Body: api.Error{Code: "bad_range", Message: "The requested range is not satisfiable.",
		Hint: "Ask for a range inside the submission's size."}}
	errFull = &apiError{Status: 503, Body: api.Error{Code: "busy", Message: "The relay is receiving too many submissions at once.",
		Hint: "Wait a minute and try again; an upload continues from where it stopped."}}
	errNotOnRoute = &apiError{Status: 403, Body: api.Error{Code: "not_on_route", Message: "You do not handle this category.",
		Hint: "Only the handlers of a case's category post its events; fetch the desk manifest again to see who handles it."}}
	errNoCoordinators = &apiError{Status: 404, Body: api.Error{Code: "no_coordinators", Message: "This desk names no coordinators.",
		Hint: "Post only the case part; fetch the desk manifest again to see whether it names coordinators."}}
	errShareTarget = &apiError{Status: 400, Body: api.Error{Code: "share_not_on_route", Message: "The handler you share with does not handle this category.",
		Hint: "Share a case only with another handler of its category, as the desk manifest lists them."}}
	errTimeout = &apiError{Status: 408, Body: api.Error{Code: "timeout", Message: "The request took too long.",
		Hint: "Ask for the current offset and continue the upload from there."}}
)

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(api.ErrorBody{Error: &e.Body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
