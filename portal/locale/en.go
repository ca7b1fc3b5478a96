package locale

var english = map[string]string{
	"app.name":   "Secure messages",
	"app.skip":   "Skip to content",
	"app.footer": "This page is private. Sign out when you are done, especially on a shared phone or computer.",

	"home.title": "Secure messages",
	"home.body":  "To read messages from your clinic, open the link in the text message they sent you.",

	"link.invalid.title": "Link not valid",
	"link.invalid.body":  "This link is not valid or has expired. Ask your clinic to send a new message.",

	"session.ended.title": "Please open your link again",
	"session.ended.body":  "Your secure session has ended. To keep your messages private, open the link in the latest text message from your clinic to sign in again.",

	"verify.title":          "Confirm it is you",
	"verify.intro":          "%s sent you a secure message. To see it, we will text a code to your phone number ending %s.",
	"verify.send":           "Text me a code",
	"verify.code":           "Verification code",
	"verify.code.hint":      "The 6 digits from the text we send you.",
	"verify.dob":            "Date of birth",
	"verify.dob.hint":       "For example 1984-03-27 (year-month-day).",
	"verify.submit":         "Verify",
	"verify.sent":           "We sent a code to your phone number ending %s. It works for %d minutes.",
	"verify.cooldown":       "We just sent you a code. Please wait a minute before asking for another one.",
	"verify.locked":         "For your safety, this page is locked after too many wrong codes. Please call your clinic: they can unlock it for you.",
	"verify.wrong":          "That code is not right, or it has expired. Check the code in your latest text, or ask for a new one.",
	"verify.wrong_dob":      "The code or the date of birth is not right. Please check them and try again.",
	"verify.send_failed":    "We could not send the text just now. Please try again in a few minutes.",
	"verify.too_many_codes": "You have asked for several codes recently. Please try again later, or call your clinic.",
	"verify.throttled":      "Too many wrong codes. Please wait a few minutes before trying again.",
	"verify.no_code":        "There is no code waiting for this page, or it has expired. Ask for a new code first.",

	"form.code.invalid": "Enter the 6-digit code from your text message.",
	"form.dob.invalid":  "Enter your date of birth, for example 1984-03-27.",

	"thread.title":         "Your messages",
	"thread.with":          "Secure messages with %s",
	"thread.you":           "You",
	"thread.staff":         "Clinic staff",
	"thread.withdrawn":     "This message was withdrawn",
	"thread.expired":       "This message has expired and can no longer be shown",
	"thread.state.sending": "Sending to the clinic…",
	"thread.state.failed":  "Not delivered to the clinic. Please call the clinic or send it again.",
	"thread.truncated":     "This message is too long to show here in full. Please ask your clinic for the rest.",
	"thread.empty":         "No messages yet.",
	"thread.earlier":       "Show earlier messages",
	"thread.later":         "Show newer messages",
	"thread.attachments":   "Attachments",
	"thread.write":         "Write to your clinic",

	"reply.label":    "Message",
	"reply.hint":     "Up to 1600 characters. In an emergency, call 911 instead.",
	"reply.submit":   "Send",
	"reply.sent":     "Your message was sent.",
	"reply.empty":    "Write a message before you press Send.",
	"reply.too_long": "Your message is too long. Please keep it under 1600 characters.",
	"reply.invalid":  "Your message has characters we cannot send. Please type it again.",
	"reply.failed":   "Your message could not be sent just now. Please try again in a few minutes.",

	"upload.title":     "Send a photo or document",
	"upload.label":     "Photo or PDF",
	"upload.hint":      "JPEG, PNG, HEIC or PDF, up to %s.",
	"upload.submit":    "Upload",
	"upload.sent":      "Your file was sent.",
	"upload.missing":   "Choose a photo or PDF first.",
	"upload.too_large": "That file is too large. The limit is %s.",
	"upload.bad_type":  "We can only accept photos (JPEG, PNG, HEIC) or PDF files.",
	"upload.failed":    "Your file could not be sent just now. Please try again in a few minutes.",

	"signout.submit": "Sign out",
	"signout.title":  "You are signed out",
	"signout.body":   "To read new messages, open the link in the latest text message from your clinic.",

	"forbidden.title": "Please try again",
	"forbidden.body":  "This form has expired or did not come from this page. Go back, reload the page and try again.",

	"notfound.title": "Page not found",
	"notfound.body":  "This page does not exist. Open the link in the text message from your clinic.",

	"error.title": "Something went wrong",
	"error.body":  "Something went wrong on our side. Please try again in a few minutes. If it keeps happening, call your clinic.",
}
