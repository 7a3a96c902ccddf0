package evidence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// What metadata can reveal, the kinds of a Finding.
const (
	KindLocation = "location" // GPS position, place names
	KindDevice   = "device"   // camera or phone make, model, serial numbers
	KindPerson   = "person"   // owner, author, artist, creator names
	KindTime     = "time"     // when it was made or changed, time zones
	KindSoftware = "software" // the programs that made or edited it
)

// Kinds lists the kinds in the order they are shown.
var Kinds = []string{KindLocation, KindDevice, KindPerson, KindTime, KindSoftware}

// Finding is one metadata field that reveals something.
type Finding struct {
	Kind  string `json:"kind"`
	Tag   string `json:"tag"`   // exiftool's GROUP:NAME
	Value string `json:"value"` // as exiftool wrote it, at most MaxValue bytes
}

// Metadata is what exiftool found in one file.
type Metadata struct {
	Findings []Finding `json:"findings"`
	// Tool is exiftool's version.
	Tool string `json:"tool"`
	// Err is why the file could not be read (exiftool's own words), ""
	// when it was.
	Err string `json:"error,omitempty"`
	// Fast: the file was larger than FastAbove and read with -fast.
	Fast bool `json:"fast,omitempty"`
}

// Bounds of a parse.
const (
	MaxExiftoolJSON = 8 << 20 // exiftool's JSON for one file
	MaxValue        = 200     // bytes of a value kept
	MaxFindings     = 64      // findings kept per file
)

// Of returns the findings of a kind.
func (m *Metadata) Of(kind string) []Finding {
	var out []Finding
	for _, f := range m.Findings {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

// Inspector reads metadata with exiftool in a Sandbox.
type Inspector struct {
	Sandbox *Sandbox // nil: the default sandbox
	// Timeout bounds one file's read; zero means 5 minutes.
	Timeout time.Duration
}

// Check reports whether exiftool and the sandbox are usable here: an
// error wrapping ErrNoTool or ErrNoSandbox says which is missing.
func (in *Inspector) Check(ctx context.Context) error {
	if _, err := toolPath("exiftool", PackageExiftool); err != nil {
		return err
	}
	return in.sandbox().Available(ctx)
}

func (in *Inspector) sandbox() *Sandbox {
	sb := Sandbox{}
	if in.Sandbox != nil {
		sb = *in.Sandbox
	}
	if sb.Timeout == 0 {
		sb.Timeout = in.Timeout
		if sb.Timeout == 0 {
			sb.Timeout = 5 * time.Minute
		}
	}
	if sb.MaxOutput == 0 {
		sb.MaxOutput = MaxExiftoolJSON
	}
	return &sb
}

// recorder remembers the first error of a reader.
type recorder struct {
	r   io.Reader
	err error
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// ReadError is a failure of the reader Inspect was given (a damaged
// attachment), not of exiftool.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// FastAbove is the size above which exiftool reads with -fast: exiftool
// keeps in memory whatever it reads from a pipe (twice a file's size at
// its peak), and -fast makes it skip data it need not keep, so that a
// large video is read in a few MiB. What -fast does not read: a trailer
// after a JPEG's image data, anything after a GIF's first comment or after
// the audio and video data of WAV and AVI files.
const FastAbove = 64 << 20

// Inspect feeds r, to its end, to exiftool on stdin and returns what it
// found. size is the file's size as declared (0 if unknown); above
// FastAbove exiftool reads with -fast and Metadata.Fast says so. r is read through even when exiftool stops early, so that a
// verifying reader verifies; its failure is returned as a *ReadError. A
// failure of exiftool or the sandbox is returned as an error wrapping
// ErrNoTool, ErrNoSandbox or ErrToolOutput, or as Metadata.Err.
func (in *Inspector) Inspect(ctx context.Context, r io.Reader, size int64) (*Metadata, error) {
	rec := &recorder{r: r}
	drain := func(err error) error {
		if rec.err == nil {
			_, rec.err = io.Copy(io.Discard, rec)
		}
		if rec.err != nil {
			return &ReadError{rec.err}
		}
		return err
	}
	if _, err := toolPath("exiftool", PackageExiftool); err != nil {
		return nil, drain(err)
	}
	// -j JSON, -n numbers not prose, -G1 the family 1 group, -a duplicates
	// kept, -q quiet; "-" reads stdin. -api LargeFileSupport reads past 4 GiB.
	args := []string{"exiftool", "-j", "-n", "-G1", "-a", "-q", "-api", "LargeFileSupport=1"}
	fast := size > FastAbove
	if fast {
		args = append(args, "-fast")
	}
	out, stderr, err := in.sandbox().exec(ctx, &run{stdin: rec, fsize: 1 << 20}, append(args, "-")...)
	if err := drain(nil); err != nil {
		return nil, err
	}
	var ee interface{ ExitCode() int }
	if err != nil && !errors.As(err, &ee) {
		return nil, err
	}
	md, perr := ParseExiftool(out)
	if perr != nil {
		msg := firstLine(bytes.TrimSpace(stderr))
		if msg == "" {
			msg = perr.Error()
		}
		return &Metadata{Err: "exiftool could not read it: " + msg, Fast: fast}, nil
	}
	md.Fast = fast
	return md, nil
}

// ErrExiftoolJSON: exiftool's output is not the JSON it writes for one file.
var ErrExiftoolJSON = errors.New("not exiftool's JSON for one file")

// ParseExiftool parses the output of `exiftool -j -n -G1` for one file and
// sorts what reveals something into findings, in the order of Kinds, then
// exiftool's order. Fields of exiftool itself and of the file it was read
// from (System, File, ExifTool groups) are not findings.
func ParseExiftool(data []byte) (*Metadata, error) {
	if len(data) > MaxExiftoolJSON {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrExiftoolJSON, MaxExiftoolJSON)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return nil, fmt.Errorf("%w: not an array", ErrExiftoolJSON)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("%w: not an array of one object", ErrExiftoolJSON)
	}
	md := &Metadata{}
	var found []Finding
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrExiftoolJSON, err)
		}
		key, ok := t.(string)
		if !ok {
			return nil, fmt.Errorf("%w: a member without a name", ErrExiftoolJSON)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrExiftoolJSON, err)
		}
		switch key {
		case "ExifTool:ExifToolVersion":
			md.Tool = valueText(raw)
			continue
		case "ExifTool:Error":
			md.Err = "exiftool could not read it: " + valueText(raw)
			continue
		}
		group, name, ok := strings.Cut(key, ":")
		if !ok {
			continue // SourceFile
		}
		kind := classify(group, name)
		if kind == "" {
			continue
		}
		v := valueText(raw)
		if v == "" || strings.Trim(v, "0: -") == "" {
			continue // an empty value, or a zero date: reveals nothing
		}
		if len(found) < MaxFindings {
			found = append(found, Finding{Kind: kind, Tag: key, Value: v})
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, fmt.Errorf("%w: the object does not end", ErrExiftoolJSON)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim(']') {
		return nil, fmt.Errorf("%w: more than one object", ErrExiftoolJSON)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the array", ErrExiftoolJSON)
	}
	for _, k := range Kinds {
		for _, f := range found {
			if f.Kind == k {
				md.Findings = append(md.Findings, f)
			}
		}
	}
	return md, nil
}

// valueText writes a JSON value as one line of text: a string as it is,
// an array joined with ", ", anything else as its JSON; at most MaxValue
// bytes, cut at a character boundary.
func valueText(raw json.RawMessage) string {
	var s string
	var list []json.RawMessage
	switch {
	case json.Unmarshal(raw, &s) == nil:
	case json.Unmarshal(raw, &list) == nil:
		parts := make([]string, 0, len(list))
		for _, r := range list {
			parts = append(parts, valueText(r))
		}
		s = strings.Join(parts, ", ")
	default:
		s = string(bytes.TrimSpace(raw))
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > MaxValue {
		s = s[:MaxValue]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

// Tag names by what they reveal. Matching is on exiftool's tag name
// (family 1 group aside), exactly, unless said otherwise in classify.
var (
	deviceTags = []string{"Make", "Model", "CameraModelName", "UniqueCameraModel", "LocalizedCameraModel",
		"LensMake", "LensModel", "Lens", "LensInfo", "LensID", "SerialNumber", "InternalSerialNumber", "BodySerialNumber",
		"LensSerialNumber", "CameraSerialNumber", "DeviceManufacturer", "DeviceModel", "DeviceModelDesc",
		"AndroidMake", "AndroidModel", "AndroidVersion", "HostComputer", "ImageUniqueID", "DocumentID", "InstanceID", "OriginalDocumentID"}
	personTags = []string{"Artist", "Author", "Creator", "By-line", "OwnerName", "CameraOwnerName", "Copyright",
		"CopyrightNotice", "Rights", "LastModifiedBy", "XPAuthor", "Company", "Manager", "Contributor", "Publisher",
		"Writer", "Writer-Editor", "Credit", "AuthorsPosition", "Owner"}
	softwareTags = []string{"Software", "CreatorTool", "Producer", "Encoder", "EncodedBy", "WritingApplication",
		"Application", "AppVersion", "ProcessingSoftware", "HistorySoftwareAgent", "XMPToolkit", "CompressorName", "HandlerVendorID", "VendorID"}
	timeTags = []string{"CreationTime", "OffsetTime", "OffsetTimeOriginal", "OffsetTimeDigitized", "TimeZone",
		"TimeCreated", "DigitalCreationTime", "SubSecTimeOriginal", "SubSecTimeDigitized", "Year"}
	locationTags = []string{"Location", "LocationInformation", "City", "Country", "Country-PrimaryLocationName",
		"Sub-location", "State", "Province-State", "CountryCode", "LocationName", "LocationCreated", "LocationShown", "Coordinates"}
)

// classify says what a tag reveals, or "" for nothing worth showing.
func classify(group, name string) string {
	switch group {
	case "System", "File", "ExifTool":
		return ""
	}
	switch {
	case name == "GPSVersionID" || strings.HasPrefix(name, "GPS") && strings.HasSuffix(name, "Ref"):
		return "" // the format's version, N/S/E/W: the values say it
	case strings.HasPrefix(name, "GPS") || slices.Contains(locationTags, name):
		return KindLocation
	case group == "PDF" && name == "Creator":
		return KindSoftware // the PDF's creating application
	case slices.Contains(deviceTags, name):
		return KindDevice
	case slices.Contains(personTags, name):
		return KindPerson
	case slices.Contains(softwareTags, name):
		return KindSoftware
	case slices.Contains(timeTags, name) || strings.HasSuffix(name, "Date") || strings.Contains(name, "DateTime"):
		return KindTime
	}
	return ""
}
