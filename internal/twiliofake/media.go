package twiliofake

import (
	"net/http"
	"slices"
	"strconv"
	"time"
)

// mediaItem is an inbound MMS attachment held by the fake until the client
// deletes it, as Twilio does.
type mediaItem struct {
	sid, parentSid, contentType string
	data                        []byte
	created                     time.Time
}

// mediaJSON is api.v2010.account.message.media.
type mediaJSON struct {
	AccountSid  string `json:"account_sid"`
	ContentType string `json:"content_type"`
	DateCreated string `json:"date_created"`
	DateUpdated string `json:"date_updated"`
	ParentSid   string `json:"parent_sid"`
	Sid         string `json:"sid"`
	URI         string `json:"uri"`
}

// MediaURL is where a stored media item's content is served (basic auth
// required, then a redirect to a one-off CDN address).
func (s *Server) MediaURL(mediaSid string) string { return s.URL + "/media/" + mediaSid }

// HasMedia reports whether the media is still stored, i.e. not yet deleted
// through the REST API.
func (s *Server) HasMedia(mediaSid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.media[mediaSid]
	return ok
}

func (s *Server) mediaJSONLocked(me *mediaItem) mediaJSON {
	return mediaJSON{
		AccountSid: s.opts.AccountSID, ContentType: me.contentType,
		DateCreated: formatTime(me.created), DateUpdated: formatTime(me.created),
		ParentSid: me.parentSid, Sid: me.sid,
		URI: "/2010-04-01/Accounts/" + s.opts.AccountSID + "/Messages/" + me.parentSid + "/Media/" + me.sid + ".json",
	}
}

func (s *Server) mediaOfLocked(messageSid, mediaSid string) *mediaItem {
	me, ok := s.media[mediaSid]
	if !ok || me.parentSid != messageSid {
		return nil
	}
	return me
}

func (s *Server) deleteMediaLocked(mediaSid string) {
	me, ok := s.media[mediaSid]
	if !ok {
		return
	}
	delete(s.media, mediaSid)
	for tok, sid := range s.cdn {
		if sid == mediaSid {
			delete(s.cdn, tok)
		}
	}
	if m, ok := s.bySid[me.parentSid]; ok {
		m.mediaSids = slices.DeleteFunc(m.mediaSids, func(x string) bool { return x == mediaSid })
	}
}

func (s *Server) handleMediaResource(w http.ResponseWriter, r *http.Request, messageSid, mediaSid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	me := s.mediaOfLocked(messageSid, mediaSid)
	if me == nil {
		notFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.mediaJSONLocked(me))
	case http.MethodDelete:
		s.deleteMediaLocked(mediaSid)
		w.WriteHeader(http.StatusNoContent)
	default:
		methodNotAllowed(w, r)
	}
}

func (s *Server) handleListMedia(w http.ResponseWriter, r *http.Request, messageSid string) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.bySid[messageSid]
	if !ok {
		notFound(w, r)
		return
	}
	base := "/2010-04-01/Accounts/" + s.opts.AccountSID + "/Messages/" + messageSid + "/Media.json"
	p, lo, hi, bad := paginate(r, base, len(m.mediaSids))
	if bad != "" {
		writeError(w, 400, 20001, bad)
		return
	}
	list := make([]mediaJSON, 0, hi-lo)
	for _, sid := range m.mediaSids[lo:hi] {
		list = append(list, s.mediaJSONLocked(s.media[sid]))
	}
	writeJSON(w, http.StatusOK, struct {
		page
		MediaList []mediaJSON `json:"media_list"`
	}{p, list})
}

// serveMediaContent answers GET /media/{sid}, the address MediaUrlN points
// to. Like Twilio (with HTTP auth on media enabled) it needs the account's
// credentials and redirects to a CDN address, so clients must both
// authenticate and follow redirects.
func (s *Server) serveMediaContent(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	s.redirectToCDN(w, r, "", r.PathValue("sid"))
}

// handleMediaContentREST answers .../Messages/{MM}/Media/{ME} (no .json),
// Twilio's own media content address.
func (s *Server) handleMediaContentREST(w http.ResponseWriter, r *http.Request, messageSid, mediaSid string) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r)
		return
	}
	s.redirectToCDN(w, r, messageSid, mediaSid)
}

func (s *Server) redirectToCDN(w http.ResponseWriter, r *http.Request, messageSid, mediaSid string) {
	s.mu.Lock()
	me, ok := s.media[mediaSid]
	if !ok || (messageSid != "" && me.parentSid != messageSid) {
		s.mu.Unlock()
		notFound(w, r)
		return
	}
	// The CDN address is a bearer capability, like a pre-signed S3 URL, so
	// the second hop needs no credentials.
	token := randomHex(20)
	s.cdn[token] = mediaSid
	s.mu.Unlock()
	http.Redirect(w, r, "/cdn/"+token, http.StatusTemporaryRedirect)
}

func (s *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sid, ok := s.cdn[r.PathValue("token")]
	me := s.media[sid]
	s.mu.Unlock()
	if !ok || me == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", me.contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(me.data)))
	w.Header().Set("Cache-Control", "private, max-age=0")
	_, _ = w.Write(me.data)
}
