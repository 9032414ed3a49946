/*
 * hallmark.audit._replay_kernel: the accept-only fast path of hallmark/audit/replay.py in C.
 *
 * Why hand-written C. Replay must recompute three SHA-256 per event (the event hash, the
 * RFC 6962 leaf hash and, on average, one interior node). In Python each hashlib call costs
 * ~440 ns of call overhead on top of the hashing, and the fast path's byte checks (needle,
 * rfind, quote count, slices, hexlify, frontier) another ~3 us, so pure Python replays at
 * ~0.1x the speed of a bare hashlib loop over the same bytes. No maintained library computes
 * RFC 6962 roots over JCS (RFC 8785) event lines natively, so this file does the byte checks
 * and the frontier; every digest is computed by OpenSSL's libcrypto (nothing cryptographic
 * is implemented here). The low-level SHA256_Init/Update/Final are used because, with
 * OpenSSL 3.0, they are ~100 ns per hash cheaper than EVP_DigestInit_ex2/Final_ex on a reused
 * context, and ~450 ns cheaper than the one-shot SHA256().
 *
 * Semantics: exactly the pure-Python fast path of replay.py (its module docstring explains
 * why it is sound), byte for byte. It only ever accepts: a line it does not accept is handed
 * back untouched, and Python's slow path parses it and produces the diagnosis. Lines are what
 * iterating a binary file gives: up to and including the next "\n", or to the end of the
 * buffer. The extension is optional; replay.py falls back to Python when it is not built.
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init/Update/Final: see above */
#include <Python.h>
#include <limits.h>
#include <string.h>

#include <openssl/sha.h>

#define HEX_LEN 64
#define MAX_NODES 64 /* one per set bit of a 63-bit size, plus the leaf being merged */

static const char PREV_KEY[] = "\",\"prevHash\":\""; /* needle: ","prevHash":"P","seq":N<sig> */
static const char SEQ_KEY[] = "\",\"seq\":";
static const char ID_KEY[] = "\",\"id\":\"";  /* the hash's closing quote, then the id */
static const char HASH_KEY[] = ",\"hash\":\"";
#define LIT_LEN(s) ((Py_ssize_t)(sizeof(s) - 1))

static void
to_hex(const unsigned char digest[32], unsigned char out[HEX_LEN])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = (unsigned char)digits[digest[i] >> 4];
        out[2 * i + 1] = (unsigned char)digits[digest[i] & 15];
    }
}

/* Python's b"%d" % v for v >= 0, at out (room for 19 digits); returns the length. */
static Py_ssize_t
put_decimal(unsigned char *out, long long v)
{
    unsigned char tmp[20];
    Py_ssize_t n = 0;
    do {
        tmp[n++] = (unsigned char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* The index of the last byte c in s[0:n], or -1. */
static Py_ssize_t
last_of(const unsigned char *s, Py_ssize_t n, unsigned char c)
{
    while (n-- > 0)
        if (s[n] == c)
            return n;
    return -1;
}

/* Python's line.rfind(needle, 0, end): the last start of needle inside line[0:end], or -1. */
static Py_ssize_t
rfind(const unsigned char *line, Py_ssize_t end, const unsigned char *needle, Py_ssize_t nlen)
{
    for (Py_ssize_t i = end - nlen; i >= 0; i--) {
        i = last_of(line, i + 1, needle[0]);
        if (i < 0 || memcmp(line + i, needle, (size_t)nlen) == 0)
            return i;
    }
    return -1;
}

/* 1 and the event's digest and its hex if the fast path accepts `line`, else 0. `needle` is
 * ","prevHash":"<last hash>","seq":<expected><sig>, the last `sig_len` bytes being <sig>
 * (which ends with ,"subject":"). Mirrors the Python statement by statement. */
static int
accept_line(const unsigned char *line, Py_ssize_t len, const unsigned char *needle,
            Py_ssize_t nlen, Py_ssize_t sig_len, unsigned char digest[32], unsigned char hex[HEX_LEN])
{
    Py_ssize_t end = len;
    if (end && line[end - 1] == '\n') {
        end--;
        if (end && line[end - 1] == '\r')
            end--;
    }
    Py_ssize_t q = rfind(line, end, needle, nlen);
    if (q <= 0)
        return 0;
    Py_ssize_t o = last_of(line, q, '"'); /* the id's opening quote */
    Py_ssize_t pos = o - 80; /* ',"hash":"<64 hex>"' ends where ',"id":"' starts */
    Py_ssize_t r0 = q + nlen; /* the subject's first character */
    Py_ssize_t q_end = r0 - sig_len; /* end of the "seq" member */
    if (pos <= 0 || memcmp(line + o - 7, ID_KEY, (size_t)LIT_LEN(ID_KEY)) != 0)
        return 0;
    int quotes = 0; /* 'U","ts":"T","type":"Y"}': the top-level tail has exactly 9 */
    for (Py_ssize_t i = r0; i < end && quotes <= 9; i++)
        quotes += line[i] == '"';
    if (quotes != 9 || memcmp(line + pos, HASH_KEY, (size_t)LIT_LEN(HASH_KEY)) != 0)
        return 0;
    /* hash the line without its "hash" and "signature" members: [0,pos) [o-6,q_end) [r0-12,end) */
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, line, (size_t)pos);
    SHA256_Update(&c, line + o - 6, (size_t)(q_end - (o - 6)));
    SHA256_Update(&c, line + r0 - 12, (size_t)(end - (r0 - 12)));
    SHA256_Final(digest, &c);
    to_hex(digest, hex);
    return memcmp(line + pos + LIT_LEN(HASH_KEY), hex, HEX_LEN) == 0;
}

/* RFC 6962: append leaf sha256(0x00 || digest) to the frontier, merge equal-sized subtrees. */
static void
frontier_push(unsigned char nodes[][32], int *count, long long *size, const unsigned char digest[32])
{
    static const unsigned char leaf_prefix = 0x00, node_prefix = 0x01;
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, &leaf_prefix, 1);
    SHA256_Update(&c, digest, 32);
    SHA256_Final(nodes[(*count)++], &c);
    long long m = ++*size;
    while (!(m & 1)) {
        (*count)--;
        SHA256_Init(&c);
        SHA256_Update(&c, &node_prefix, 1);
        SHA256_Update(&c, nodes[*count - 1], 32);
        SHA256_Update(&c, nodes[*count], 32);
        SHA256_Final(nodes[*count - 1], &c);
        m >>= 1;
    }
}

PyDoc_STRVAR(run_doc,
"run(buf, offset, last_hash, expected, sig_member, stop_seq, nodes, size)\n"
"    -> (offset, accepted, last_hash, last_prev)\n\n"
"Accept the consecutive lines of buf from offset that replay.py's fast path accepts for a\n"
"chain whose last hash is last_hash (64 hex bytes), whose next event is seq expected and\n"
"must carry sig_member; stop after accepting seq stop_seq (a checkpoint to verify), at the\n"
"first line not accepted, or at the end of buf. nodes (the RFC 6962 frontier, a list of\n"
"32-byte bytes, one per set bit of size) is updated in place. Returns where it stopped, the\n"
"number of events accepted and, when that is not 0, the new last hash and the one before.");

static PyObject *
run(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer buf, last, sig;
    Py_ssize_t offset;
    long long expected, size;
    PyObject *stop_obj, *nodes_list;
    if (!PyArg_ParseTuple(args, "y*ny*Ly*OO!L", &buf, &offset, &last, &expected, &sig, &stop_obj,
                          &PyList_Type, &nodes_list, &size))
        return NULL;
    PyObject *result = NULL;
    unsigned char *needle = NULL;
    unsigned char nodes[MAX_NODES][32];
    int overflow = 0, count = (int)PyList_GET_SIZE(nodes_list);
    long long stop = PyLong_Check(stop_obj) ? PyLong_AsLongLongAndOverflow(stop_obj, &overflow) : -1;
    if (stop == -1 && PyErr_Occurred())
        goto done;
    if (overflow) /* a checkpoint seq past any reachable seq */
        stop = overflow > 0 ? LLONG_MAX : -1;
    if (offset < 0 || offset > buf.len || last.len != HEX_LEN || expected < 1 || size < 0
        || size >= LLONG_MAX / 2 || PyList_GET_SIZE(nodes_list) != __builtin_popcountll((unsigned long long)size)) {
        PyErr_SetString(PyExc_ValueError, "replay kernel: inconsistent chain state");
        goto done;
    }
    for (int i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(nodes_list, i);
        if (!PyBytes_Check(item) || PyBytes_GET_SIZE(item) != 32) {
            PyErr_SetString(PyExc_ValueError, "replay kernel: frontier nodes must be 32-byte bytes");
            goto done;
        }
        memcpy(nodes[i], PyBytes_AS_STRING(item), 32);
    }
    /* ","prevHash":"<64>","seq":<up to 19 digits><sig> */
    Py_ssize_t seq_at = LIT_LEN(PREV_KEY) + HEX_LEN + LIT_LEN(SEQ_KEY);
    needle = PyMem_Malloc((size_t)(seq_at + 20 + sig.len));
    if (needle == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    unsigned char hash[HEX_LEN], prev[HEX_LEN], hex[HEX_LEN], digest[32];
    memcpy(hash, last.buf, HEX_LEN);
    memcpy(needle, PREV_KEY, (size_t)LIT_LEN(PREV_KEY));
    memcpy(needle + LIT_LEN(PREV_KEY) + HEX_LEN, SEQ_KEY, (size_t)LIT_LEN(SEQ_KEY));
    const unsigned char *data = buf.buf;
    Py_ssize_t accepted = 0;

    Py_BEGIN_ALLOW_THREADS
    while (offset < buf.len) {
        const unsigned char *line = data + offset;
        const unsigned char *nl = memchr(line, '\n', (size_t)(buf.len - offset));
        Py_ssize_t len = nl ? nl - line + 1 : buf.len - offset;
        memcpy(needle + LIT_LEN(PREV_KEY), hash, HEX_LEN);
        Py_ssize_t nlen = seq_at + put_decimal(needle + seq_at, expected);
        memcpy(needle + nlen, sig.buf, (size_t)sig.len);
        nlen += sig.len;
        if (!accept_line(line, len, needle, nlen, sig.len, digest, hex))
            break;
        frontier_push(nodes, &count, &size, digest);
        memcpy(prev, hash, HEX_LEN);
        memcpy(hash, hex, HEX_LEN);
        offset += len;
        accepted++;
        if (expected++ == stop || expected == LLONG_MAX)
            break;
    }
    Py_END_ALLOW_THREADS

    if (accepted) {
        PyObject *fresh = PyList_New(count);
        for (int i = 0; fresh && i < count; i++) {
            PyObject *item = PyBytes_FromStringAndSize((const char *)nodes[i], 32);
            if (item == NULL)
                Py_CLEAR(fresh);
            else
                PyList_SET_ITEM(fresh, i, item);
        }
        if (fresh == NULL || PyList_SetSlice(nodes_list, 0, PY_SSIZE_T_MAX, fresh) < 0) {
            Py_XDECREF(fresh);
            goto done;
        }
        Py_DECREF(fresh);
        result = Py_BuildValue("nny#y#", offset, accepted, hash, (Py_ssize_t)HEX_LEN, prev,
                               (Py_ssize_t)HEX_LEN);
    }
    else
        result = Py_BuildValue("nnOO", offset, accepted, Py_None, Py_None);
done:
    PyMem_Free(needle);
    PyBuffer_Release(&buf);
    PyBuffer_Release(&last);
    PyBuffer_Release(&sig);
    return result;
}

static PyMethodDef methods[] = {
    {"run", run, METH_VARARGS, run_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_replay_kernel",
    "The replay fast path of hallmark.audit.replay in C (hashing by OpenSSL libcrypto).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__replay_kernel(void)
{
    return PyModule_Create(&module);
}
