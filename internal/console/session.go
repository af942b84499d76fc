package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The session cookie holds a random id; Redis holds the session under the
// id's SHA-256, so a read of Redis does not yield a usable cookie.
const (
	sessionCookie = "distq_console"
	loginCookie   = "distq_console_login"
	csrfField     = "csrf"
)

// session is a signed-in team.
type session struct {
	Team string `json:"team"`
	// Token is the hex SHA-256 of the token that signed in: a session ends
	// when its token is no longer configured.
	Token   string    `json:"token"`
	CSRF    string    `json:"csrf"`
	Expires time.Time `json:"expires"`
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sessionKey(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}

// session returns the request's session, or false.
func (c *console) session(r *http.Request) (*session, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 100 {
		return nil, false
	}
	raw, err := c.Sessions.GetSession(r.Context(), sessionKey(ck.Value))
	if err != nil {
		return nil, false
	}
	var s session
	if json.Unmarshal(raw, &s) != nil || s.Team == "" || time.Now().After(s.Expires) || c.tokens.TeamOfHash(s.Token) != s.Team {
		return nil, false
	}
	return &s, true
}

// signedIn runs h with the request's session; without one, a page asks to
// sign in, and a state-changing request is refused. A POST must carry the
// session's CSRF token.
func (c *console) signedIn(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		s, ok := c.session(r)
		if !ok {
			if r.Method == http.MethodGet && r.Header.Get("X-Console-Live") == "" {
				http.Redirect(w, r, Prefix+"/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.errorPage(w, r, nil, http.StatusUnauthorized, "Signed out", "Your session ended; sign in again.")
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if !sameToken(formValue(r, csrfField), s.CSRF) {
				c.errorPage(w, r, s, http.StatusForbidden, "Form expired", "This form is no longer valid (its security token did not match); go back, reload and try again.")
				return
			}
		}
		h(w, r, s)
	}
}

// maxForm bounds a form's body: a CSV of 10,000 items fits.
const maxForm = 10 << 20

// formValue reads a field of a urlencoded or multipart form.
func formValue(r *http.Request, name string) string {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		if r.MultipartForm == nil {
			if err := r.ParseMultipartForm(2 << 20); err != nil {
				return ""
			}
		}
	}
	return r.FormValue(name)
}

func sameToken(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// secureCookies reports whether cookies should be Secure: when the request
// came over TLS, directly or through a proxy that says so.
func secureCookies(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

func (c *console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: Prefix + "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureCookies(r),
	})
}

type loginData struct {
	CSRF, Next, Error, Info string
}

// loginPage shows the sign-in form. Before a session exists, the form's
// CSRF token is a double-submit cookie.
func (c *console) loginPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if _, ok := c.session(r); ok {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, http.StatusOK, "")
}

func (c *console) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	tok := randomToken()
	c.setCookie(w, r, loginCookie, tok, 600)
	d := &loginData{CSRF: tok, Next: safeNext(r.FormValue("next")), Error: msg}
	if r.URL.Query().Get("signed_out") != "" && msg == "" {
		d.Info = "You signed out."
	}
	c.render(w, r, nil, status, "login", d)
}

// safeNext keeps a redirect after sign-in inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix + "/"
	}
	return next
}

func (c *console) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(r.FormValue(csrfField), ck.Value) {
		c.showLogin(w, r, http.StatusForbidden, "The sign-in form expired; try again.")
		return
	}
	if !c.loginAllowed(r) {
		c.showLogin(w, r, http.StatusTooManyRequests, "Too many failed sign-ins from here; wait a minute and try again.")
		return
	}
	sum := sha256.Sum256([]byte(r.FormValue("token")))
	hash := hex.EncodeToString(sum[:])
	team := c.tokens.TeamOfHash(hash)
	if team == "" {
		c.loginFailed(r)
		c.showLogin(w, r, http.StatusUnauthorized, "That token is not valid.")
		return
	}
	id := randomToken()
	s := session{Team: team, Token: hash, CSRF: randomToken(), Expires: time.Now().Add(c.SessionTTL)}
	raw, _ := json.Marshal(s)
	if err := c.Sessions.PutSession(r.Context(), sessionKey(id), raw, c.SessionTTL); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	c.setCookie(w, r, loginCookie, "", -1)
	c.setCookie(w, r, sessionCookie, id, int(c.SessionTTL.Seconds()))
	http.Redirect(w, r, safeNext(r.FormValue("next")), http.StatusSeeOther)
}

func (c *console) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if err := c.Sessions.DeleteSession(r.Context(), sessionKey(ck.Value)); err != nil {
			c.Log.Warn("console: delete session", "err", err)
		}
	}
	c.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"/login?signed_out=1", http.StatusSeeOther)
}
