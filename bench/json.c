// SPDX-License-Identifier: MIT
/*
 * bench/json.c - a small JSON writer and reader, enough for ufvm's own
 * files: the benchmark results and the ufvm-stats-1 snapshots.
 *
 * The reader builds a tree (objects keep their members in file order) and
 * accepts RFC 8259 JSON; \u escapes outside ASCII are kept as UTF-8.
 * Nesting is limited to 64 levels.  Strings are C strings, so one that
 * holds \u0000 is refused rather than cut short; a \u escape of half a
 * surrogate pair, which has no UTF-8, becomes U+FFFD.  A number too large
 * for a double is refused; one too small reads as 0 (or a denormal).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/bench.h"

/* ---- writer ---- */

void jw_init(struct jw *w, FILE *f)
{
	w->f = f;
	w->depth = 0;
	w->first[0] = true;
}

static void jw_quote(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void jw_key(struct jw *w, const char *key)
{
	if (!w->first[w->depth])
		fputc(',', w->f);
	w->first[w->depth] = false;
	if (key) {
		jw_quote(w->f, key);
		fputc(':', w->f);
	}
}

static void jw_open(struct jw *w, const char *key, char c)
{
	jw_key(w, key);
	fputc(c, w->f);
	if (w->depth + 1 < JW_DEPTH)
		w->depth++;
	w->first[w->depth] = true;
}

void jw_obj(struct jw *w, const char *key)
{
	jw_open(w, key, '{');
}

void jw_arr(struct jw *w, const char *key)
{
	jw_open(w, key, '[');
}

void jw_end(struct jw *w, char close)
{
	fputc(close, w->f);
	if (w->depth)
		w->depth--;
}

void jw_u64(struct jw *w, const char *key, uint64_t v)
{
	jw_key(w, key);
	fprintf(w->f, "%llu", (unsigned long long)v);
}

void jw_num(struct jw *w, const char *key, double v)
{
	jw_key(w, key);
	if (!isfinite(v))
		fputs("null", w->f);
	else if (v == nearbyint(v) && fabs(v) < 1e15)
		fprintf(w->f, "%.0f", v);	/* a count: every digit */
	else
		fprintf(w->f, "%.6g", v);
}

void jw_str(struct jw *w, const char *key, const char *s)
{
	jw_key(w, key);
	jw_quote(w->f, s);
}

void jw_bool(struct jw *w, const char *key, bool v)
{
	jw_key(w, key);
	fputs(v ? "true" : "false", w->f);
}

void jw_null(struct jw *w, const char *key)
{
	jw_key(w, key);
	fputs("null", w->f);
}

void jw_raw(struct jw *w, const char *key, const char *text)
{
	size_t n = strlen(text);

	while (n && isspace((unsigned char)text[n - 1]))
		n--;
	jw_key(w, key);
	fwrite(text, 1, n, w->f);
}

/* ---- reader ---- */

struct jp {
	const char *s, *p;
	char *err;
	size_t errlen;
	unsigned int depth;
};

static int jp_fail(struct jp *j, const char *what)
{
	if (j->err && j->errlen)
		snprintf(j->err, j->errlen, "%s at byte %zu", what, (size_t)(j->p - j->s));
	return -EINVAL;
}

static void jp_ws(struct jp *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static int jp_value(struct jp *j, struct jv *v);

static void utf8_put(char **o, unsigned int cp)
{
	char *q = *o;

	if (cp < 0x80) {
		*q++ = (char)cp;
	} else if (cp < 0x800) {
		*q++ = (char)(0xc0 | (cp >> 6));
		*q++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*q++ = (char)(0xe0 | (cp >> 12));
		*q++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*q++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*q++ = (char)(0xf0 | (cp >> 18));
		*q++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*q++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*q++ = (char)(0x80 | (cp & 0x3f));
	}
	*o = q;
}

static int hex4(const char *p, unsigned int *out)
{
	unsigned int v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned int)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned int)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned int)(c - 'A' + 10);
		else
			return -EINVAL;
	}
	*out = v;
	return 0;
}

static int jp_string(struct jp *j, char **out)
{
	const char *p = j->p + 1;
	char *buf, *o;
	size_t n = 0;

	while (p[n] && p[n] != '"')
		n += p[n] == '\\' && p[n + 1] ? 2 : 1;
	if (p[n] != '"')
		return jp_fail(j, "unterminated string");
	buf = malloc(n + 1);	/* escapes never grow the text */
	if (!buf)
		return -ENOMEM;
	for (o = buf; *p != '"';) {
		unsigned int cp, lo;

		if ((unsigned char)*p < 0x20) {
			j->p = p;
			free(buf);
			return jp_fail(j, "control character in string");
		}
		if (*p != '\\') {
			*o++ = *p++;
			continue;
		}
		p++;
		switch (*p) {
		case '"': case '\\': case '/':
			*o++ = *p;
			break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (hex4(p + 1, &cp))
				goto bad;
			if (!cp) {
				j->p = p - 1;
				free(buf);
				return jp_fail(j, "\\u0000 in a string (not supported)");
			}
			p += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && p[1] == '\\' && p[2] == 'u' &&
			    !hex4(p + 3, &lo) && lo >= 0xdc00 && lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			} else if (cp >= 0xd800 && cp < 0xe000) {
				cp = 0xfffd;	/* a lone surrogate: no UTF-8 for it */
			}
			utf8_put(&o, cp);
			break;
		default:
			goto bad;
		}
		p++;
	}
	*o = 0;
	j->p = p + 1;
	*out = buf;
	return 0;
bad:
	j->p = p;
	free(buf);
	return jp_fail(j, "bad escape");
}

static size_t jp_digits(const char *p)
{
	return strspn(p, "0123456789");
}

/*
 * A number as RFC 8259 writes it: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * strtod() alone would take 0x10, 01, "1." and inf too.  Integers keep
 * their exact value beside the double (is_u, is_i), for jv_print().
 */
static int jp_number(struct jp *j, struct jv *v)
{
	const char *p = j->p;
	bool neg = *p == '-', integer = true;
	char *end;
	size_t n;

	p += neg;
	n = jp_digits(p);
	if (!n)
		return jp_fail(j, *p ? "unexpected character" : "unexpected end");
	if (*p == '0' && n > 1)
		return jp_fail(j, "bad number (a leading zero)");
	p += n;
	if (*p == '.') {
		integer = false;
		n = jp_digits(p + 1);
		if (!n)
			return jp_fail(j, "bad number (no digit after '.')");
		p += 1 + n;
	}
	if (*p == 'e' || *p == 'E') {
		integer = false;
		p += 1 + (p[1] == '+' || p[1] == '-');
		n = jp_digits(p);
		if (!n)
			return jp_fail(j, "bad number (no digit in the exponent)");
		p += n;
	}
	v->type = JV_NUM;
	errno = 0;
	v->num = strtod(j->p, &end);
	if (end != p)
		return jp_fail(j, "bad number");
	if (errno == ERANGE && isinf(v->num))
		return jp_fail(j, "number out of range");
	if (integer) {
		errno = 0;
		if (neg) {
			v->i = strtoll(j->p, NULL, 10);
			v->is_i = errno == 0;
		} else {
			v->u = strtoull(j->p, NULL, 10);
			v->is_u = errno == 0;
		}
	}
	j->p = p;
	return 0;
}

/* Append a zeroed element to @v (an array or object). */
static struct jv *jp_push(struct jv *v, char *key)
{
	struct jv *nv;
	char **nk;

	if ((v->n & (v->n - 1)) == 0) {	/* 0, 1, 2, 4, ...: grow */
		size_t cap = v->n ? v->n * 2 : 4;

		nv = realloc(v->v, cap * sizeof(*nv));
		if (!nv)
			return NULL;
		v->v = nv;
		if (v->type == JV_OBJ) {
			nk = realloc(v->k, cap * sizeof(*nk));
			if (!nk)
				return NULL;
			v->k = nk;
		}
	}
	if (v->type == JV_OBJ)
		v->k[v->n] = key;
	memset(&v->v[v->n], 0, sizeof(v->v[0]));
	return &v->v[v->n++];
}

static int jp_container(struct jp *j, struct jv *v, char close)
{
	int err;

	if (++j->depth > 64)
		return jp_fail(j, "nesting too deep");
	v->type = close == '}' ? JV_OBJ : JV_ARR;
	j->p++;
	jp_ws(j);
	if (*j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		struct jv *e;

		jp_ws(j);
		if (close == '}') {
			if (*j->p != '"')
				return jp_fail(j, "expected a key");
			err = jp_string(j, &key);
			if (err)
				return err;
			jp_ws(j);
			if (*j->p != ':') {
				free(key);
				return jp_fail(j, "expected ':'");
			}
			j->p++;
		}
		e = jp_push(v, key);
		if (!e) {
			free(key);
			return -ENOMEM;
		}
		err = jp_value(j, e);
		if (err)
			return err;
		jp_ws(j);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p == close) {
			j->p++;
			j->depth--;
			return 0;
		}
		return jp_fail(j, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int jp_word(struct jp *j, const char *w)
{
	size_t n = strlen(w);

	if (strncmp(j->p, w, n))
		return jp_fail(j, "unexpected word");
	j->p += n;
	return 0;
}

static int jp_value(struct jp *j, struct jv *v)
{
	jp_ws(j);
	switch (*j->p) {
	case '{':
		return jp_container(j, v, '}');
	case '[':
		return jp_container(j, v, ']');
	case '"':
		v->type = JV_STR;
		return jp_string(j, &v->str);
	case 't':
		v->type = JV_BOOL;
		v->b = true;
		return jp_word(j, "true");
	case 'f':
		v->type = JV_BOOL;
		return jp_word(j, "false");
	case 'n':
		v->type = JV_NULL;
		return jp_word(j, "null");
	case 0:
		return jp_fail(j, "unexpected end");
	default:
		return jp_number(j, v);
	}
}

int jv_parse(const char *text, size_t len, struct jv *out, char *err, size_t errlen)
{
	struct jp j = { .s = text, .p = text, .err = err, .errlen = errlen };
	int e;

	memset(out, 0, sizeof(*out));
	e = jp_value(&j, out);
	if (!e) {
		jp_ws(&j);
		if (*j.p)
			e = jp_fail(&j, "trailing characters");
		else if ((size_t)(j.p - text) != len)	/* the text went on past a NUL */
			e = jp_fail(&j, "a NUL byte");
	}
	if (e) {
		if (e == -ENOMEM && err && errlen)
			snprintf(err, errlen, "out of memory");
		jv_free(out);
	}
	return e;
}

void jv_free(struct jv *v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < v->n; i++) {
		jv_free(&v->v[i]);
		if (v->type == JV_OBJ)
			free(v->k[i]);
	}
	free(v->v);
	free(v->k);
	free(v->str);
	memset(v, 0, sizeof(*v));
}

const struct jv *jv_get(const struct jv *o, const char *key)
{
	size_t i;

	if (!o || o->type != JV_OBJ)
		return NULL;
	for (i = 0; i < o->n; i++)
		if (!strcmp(o->k[i], key))
			return &o->v[i];
	return NULL;
}

const struct jv *jv_path(const struct jv *root, const char *path)
{
	const struct jv *v = root;
	char seg[128];

	while (v && *path) {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(seg))
			return NULL;
		memcpy(seg, path, n);
		seg[n] = 0;
		path += n + (path[n] == '.');
		if (v->type == JV_ARR) {
			char *end;
			unsigned long i = strtoul(seg, &end, 10);

			v = *seg && !*end && i < v->n ? &v->v[i] : NULL;
		} else {
			v = jv_get(v, seg);
		}
	}
	return v;
}

double jv_num(const struct jv *v, double dflt)
{
	return v && v->type == JV_NUM ? v->num : dflt;
}

/* The fewest digits that read back as @x: 0.1 is "0.1", not 0.10000000000000001. */
static void jv_print_double(FILE *f, double x)
{
	char buf[32];
	int prec;

	for (prec = 1; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, x);
		if (strtod(buf, NULL) == x)
			break;
	}
	fprintf(f, "%.*g", prec, x);
}

void jv_print(FILE *f, const struct jv *v)
{
	size_t i;

	switch (v->type) {
	case JV_NULL:
		fputs("null", f);
		break;
	case JV_BOOL:
		fputs(v->b ? "true" : "false", f);
		break;
	case JV_NUM:
		if (v->is_u)
			fprintf(f, "%llu", (unsigned long long)v->u);
		else if (v->is_i)
			fprintf(f, "%lld", (long long)v->i);
		else
			jv_print_double(f, v->num);
		break;
	case JV_STR:
		jw_quote(f, v->str);
		break;
	case JV_ARR:
	case JV_OBJ:
		fputc(v->type == JV_OBJ ? '{' : '[', f);
		for (i = 0; i < v->n; i++) {
			if (i)
				fputc(',', f);
			if (v->type == JV_OBJ) {
				jw_quote(f, v->k[i]);
				fputc(':', f);
			}
			jv_print(f, &v->v[i]);
		}
		fputc(v->type == JV_OBJ ? '}' : ']', f);
		break;
	}
}

int bench_read_file(const char *path, char **out, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	size_t n = 0, cap = 1 << 16, r;
	struct stat st;
	char *buf, *nb;
	int err = 0;

	if (!f)
		return -errno;
	if (!fstat(fileno(f), &st) && S_ISDIR(st.st_mode)) {
		if (f != stdin)
			fclose(f);
		return -EISDIR;	/* reading it would say only EIO */
	}
	buf = malloc(cap);
	while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (n + 1 == cap && cap >= BENCH_READ_MAX) {
			err = -EFBIG;	/* no JSON of ufvm's is that long: not one */
			break;
		}
		if (n + 1 == cap) {
			nb = realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
	}
	if (!buf)
		err = -ENOMEM;
	else if (!err && ferror(f))
		err = -EIO;
	if (f != stdin)
		fclose(f);
	if (err) {
		free(buf);
		return err;
	}
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}
