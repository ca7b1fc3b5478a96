package portal

import (
	"net/http"
	"strings"
)

// linkPreviewers are User-Agent fragments of the programs that fetch a link to show a preview
// of it (messaging apps, social sites, mail scanners) rather than a patient opening it.
var linkPreviewers = []string{
	"facebookexternalhit", "facebot", "twitterbot", "slackbot", "slack-imgproxy", "whatsapp", "telegrambot",
	"discordbot", "linkedinbot", "skypeuripreview", "applebot", "googlebot", "bingbot", "embedly",
	"pinterest", "redditbot", "iframely", "mattermost", "microsoftpreview", "bitlybot",
	"google-pagerenderer", "yandexbot", "duckduckbot", "petalbot",
}

// isLinkPreview reports whether the request is a preview or prefetch of a link, not a person
// opening it: a HEAD request, a browser's prefetch (Sec-Purpose, Purpose), or a known
// previewer's User-Agent. Such a request must not redeem the link, set a cookie or be audited
// as the patient opening it. A previewer that hides its name still only gets a pre-auth it
// never uses: the code goes to the patient's phone.
func isLinkPreview(r *http.Request) bool {
	if r.Method == http.MethodHead {
		return true
	}
	for _, h := range []string{"Sec-Purpose", "Purpose", "X-Purpose", "X-Moz"} {
		if v := strings.ToLower(r.Header.Get(h)); strings.Contains(v, "prefetch") || strings.Contains(v, "preview") {
			return true
		}
	}
	ua := strings.ToLower(r.UserAgent())
	for _, name := range linkPreviewers {
		if strings.Contains(ua, name) {
			return true
		}
	}
	return false
}
