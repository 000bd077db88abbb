// Transport and the TLS context. See transport.hpp.

#include "transport.hpp"

#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ssl/error.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace meshd {

namespace {

// Mozilla's "intermediate" TLS 1.2 list: ECDHE key exchange, AEAD ciphers
// only. TLS 1.3 keeps OpenSSL's default suites (all AEAD).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr std::size_t kMaxPemBytes = 1 << 20;
constexpr std::size_t kRecordBytes = 16 * 1024;  // TLS's largest record

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Encrypted keys are refused instead of prompting on the terminal.
int no_password(char*, int, int, void*) { return 0; }

// The first (deepest) error in OpenSSL's queue, which is then emptied.
std::string openssl_reason() {
  const unsigned long error = ERR_get_error();
  ERR_clear_error();
  if (error == 0) return "unknown error";
  if (ERR_SYSTEM_ERROR(error)) return std::strerror(static_cast<int>(ERR_GET_REASON(error)));
  const char* reason = ERR_reason_error_string(error);
  return reason ? reason : "unknown error";
}

[[noreturn]] void fail(const char* what, const std::string& file, const std::string& reason) {
  throw std::runtime_error(std::string(what) + " '" + file + "': " + reason);
}

std::string read_pem(const char* what, const std::string& file) {
  FILE* in = std::fopen(file.c_str(), "rb");
  if (!in) fail(what, file, std::strerror(errno));
  std::string data;
  char chunk[4096];
  std::size_t n = 0;
  while (data.size() <= kMaxPemBytes && (n = std::fread(chunk, 1, sizeof chunk, in)) > 0)
    data.append(chunk, n);
  const int error = std::ferror(in) ? errno : 0;
  std::fclose(in);
  if (error) fail(what, file, std::strerror(error));
  if (data.size() > kMaxPemBytes) fail(what, file, "larger than 1 MiB, not a PEM file");
  return data;
}

// Why `pem` holds no usable `expected` (OpenSSL's reasons alone, such as
// "unsupported" for a file that is not PEM at all, say little).
std::string pem_problem(const std::string& pem, const char* expected) {
  const std::string reason = openssl_reason();
  if (pem.find("-----BEGIN ") == std::string::npos)
    return std::string("not a PEM file (no ") + expected + " in it)";
  if (pem.find("ENCRYPTED") != std::string::npos)
    return "an encrypted key: meshd needs it unencrypted (" + reason + ")";
  return std::string("no valid ") + expected + " (" + reason + ")";
}

BioPtr memory_bio(const std::string& data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string describe(X509* cert) {
  char subject[256] = {};
  X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
  std::string text = std::string("subject ") + subject + ", expires ";
  BioPtr out(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(out.get(), X509_get0_notAfter(cert));
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  text.append(data, static_cast<std::size_t>(size));
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) text += " (EXPIRED)";
  return text;
}

}  // namespace

TlsContext load_tls_context(const std::string& cert_file, const std::string& key_file,
                            std::string* summary) {
  ERR_clear_error();
  const std::string cert_pem = read_pem("TLS certificate", cert_file);
  const std::string key_pem = read_pem("TLS key", key_file);

  TlsContext context(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!context) throw std::runtime_error("TLS: cannot create a context: " + openssl_reason());
  SSL_CTX* ctx = context.get();
  SSL_CTX_set_default_passwd_cb(ctx, no_password);

  // The chain: the server's certificate, then its issuers (as
  // SSL_CTX_use_certificate_chain_file reads it, but from the bytes read once).
  auto bio = memory_bio(cert_pem);
  std::unique_ptr<X509, X509Free> leaf(
      PEM_read_bio_X509_AUX(bio.get(), nullptr, no_password, nullptr));
  if (!leaf) fail("TLS certificate", cert_file, pem_problem(cert_pem, "certificate"));
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1)
    fail("TLS certificate", cert_file, openssl_reason());
  while (X509* issuer = PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, issuer) != 1) {
      X509_free(issuer);
      fail("TLS certificate", cert_file, openssl_reason());
    }
  }
  // The loop ends at the end of the file ("no start line"): anything else
  // is a broken certificate in the chain.
  const unsigned long end = ERR_peek_last_error();
  if (end != 0 && !(ERR_GET_LIB(end) == ERR_LIB_PEM && ERR_GET_REASON(end) == PEM_R_NO_START_LINE))
    fail("TLS certificate", cert_file, "broken certificate in the chain (" + openssl_reason() + ")");
  ERR_clear_error();

  bio = memory_bio(key_pem);
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
  if (!key) fail("TLS key", key_file, pem_problem(key_pem, "private key"));
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    ERR_clear_error();
    fail("TLS key", key_file, "does not match the certificate '" + cert_file + "'");
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) fail("TLS key", key_file, openssl_reason());

  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1)
    throw std::runtime_error("TLS: cipher list refused: " + openssl_reason());
  // No compression (CRIME), no renegotiation, no resumption: a session
  // cache or tickets would cost memory and key management for a reconnect
  // that costs one ECDHE handshake. An EOF without close_notify reads as an
  // EOF (WebSocket and HTTP frame their own ends).
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                               SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 0);
  // Idle connections give their record buffers back; one record per
  // SSL_write call (the flush counts what was taken); the flush may offer a
  // pending record again from another address (write_scratch).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);  // one read() per record, not two (header, body)
  if (summary) *summary = describe(leaf.get());
  return context;
}

// ---------------------------------------------------------------------------

Transport::Transport(Socket&& socket, SSL_CTX& context)
    : socket_(std::move(socket)), ssl_(SSL_new(&context)) {
  if (!ssl_ || SSL_set_fd(ssl_.get(), socket_.native_handle()) != 1)
    throw std::runtime_error("TLS: cannot create a connection: " + openssl_reason());
  SSL_set_accept_state(ssl_.get());
  beast::error_code ignored;
  socket_.non_blocking(true, ignored);  // OpenSSL reads and writes the descriptor itself
}

bool Transport::is_plaintext_http(const beast::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return false;
  const auto error = static_cast<unsigned long>(ec.value());
  return ERR_GET_LIB(error) == ERR_LIB_SSL && (ERR_GET_REASON(error) == SSL_R_HTTP_REQUEST ||
                                                ERR_GET_REASON(error) == SSL_R_HTTPS_PROXY_REQUEST);
}

asio::mutable_buffer Transport::write_scratch() {
  thread_local std::vector<char> scratch(kRecordBytes);
  return asio::buffer(scratch);
}

ssize_t Transport::plain_write_copied(const iovec* iov, std::size_t count) {
  const auto scratch = write_scratch();
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i) total += iov[i].iov_len;
  if (total > scratch.size()) {
    msghdr message{};
    message.msg_iov = const_cast<iovec*>(iov);
    message.msg_iovlen = count;
    return ::sendmsg(socket_.native_handle(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  auto* out = static_cast<char*>(scratch.data());
  for (std::size_t i = 0; i < count; ++i) {
    std::memcpy(out, iov[i].iov_base, iov[i].iov_len);
    out += iov[i].iov_len;
  }
  return ::send(socket_.native_handle(), scratch.data(), total, MSG_NOSIGNAL | MSG_DONTWAIT);
}

Transport::Step Transport::finish_step(int result) {
  Step step;
  if (result > 0) {
    step.bytes = static_cast<std::size_t>(result);
    return step;
  }
  const int error = SSL_get_error(ssl_.get(), result);
  switch (error) {
    case SSL_ERROR_WANT_READ:
      step.want = Want::read;
      break;
    case SSL_ERROR_WANT_WRITE:
      step.want = Want::write;
      break;
    case SSL_ERROR_ZERO_RETURN:
      step.ec = asio::error::eof;
      break;
    case SSL_ERROR_SYSCALL:
      step.ec = errno != 0 ? beast::error_code(errno, beast::system_category())
                           : beast::error_code(asio::error::eof);
      break;
    default: {
      const unsigned long first = ERR_get_error();
      step.ec = beast::error_code(static_cast<int>(first != 0 ? first : ERR_PACK(ERR_LIB_SSL, 0, 0)),
                                  asio::error::get_ssl_category());
      break;
    }
  }
  ERR_clear_error();
  return step;
}

Transport::Step Transport::tls_handshake() {
  if (!socket_.is_open()) return {0, Want::nothing, asio::error::bad_descriptor};
  ERR_clear_error();
  errno = 0;
  return finish_step(SSL_do_handshake(ssl_.get()));
}

bool Transport::rehome(asio::io_context& ioc) {
  beast::error_code ec;
  const tcp protocol = socket_.local_endpoint(ec).protocol();
  if (ec) return false;
  const Socket::native_handle_type fd = socket_.release(ec);  // out of the old loop's reactor
  if (ec) return false;
  Socket moved(ioc.get_executor());
  moved.assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return false;  // the socket is gone: the session's next read fails and ends it
  }
  moved.non_blocking(true, ec);  // reads and writes are non-blocking calls of their own
  socket_ = std::move(moved);
  return true;
}

Transport::Step Transport::read_some(void* data, std::size_t size) {
  if (ssl_) return tls_read(data, size);
  if (!socket_.is_open()) return {0, Want::nothing, asio::error::bad_descriptor};
  for (;;) {
    const ssize_t n = ::recv(socket_.native_handle(), data, size, MSG_DONTWAIT);
    if (n > 0) return {static_cast<std::size_t>(n), Want::nothing, {}};
    if (n == 0) return {0, Want::nothing, asio::error::eof};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {0, Want::read, {}};
    return {0, Want::nothing, beast::error_code(errno, beast::system_category())};
  }
}

Transport::Step Transport::tls_read(void* data, std::size_t size) {
  if (!socket_.is_open()) return {0, Want::nothing, asio::error::bad_descriptor};
  ERR_clear_error();
  errno = 0;
  return finish_step(SSL_read(ssl_.get(), data, static_cast<int>(std::min(size, kRecordBytes * 4))));
}

Transport::Step Transport::tls_write(const void* data, std::size_t size) {
  if (!socket_.is_open()) return {0, Want::nothing, asio::error::bad_descriptor};
  ERR_clear_error();
  errno = 0;
  Step step = finish_step(SSL_write(ssl_.get(), data, static_cast<int>(size)));
  write_retry_ = step.want == Want::write ? size : 0;
  return step;
}

ssize_t Transport::tls_write_gather(const iovec* iov, std::size_t count) {
  const auto scratch = write_scratch();
  auto* out = static_cast<char*>(scratch.data());
  std::size_t size = 0;
  for (std::size_t i = 0; i < count && size < scratch.size(); ++i) {
    const std::size_t n = std::min(iov[i].iov_len, scratch.size() - size);
    std::memcpy(out + size, iov[i].iov_base, n);
    size += n;
  }
  const Step step = tls_write(out, size);
  if (step.bytes > 0) return static_cast<ssize_t>(step.bytes);
  if (step.want == Want::write) {
    errno = EAGAIN;
    return -1;
  }
  // WANT_READ would be a renegotiation, which is off: an error like any other.
  errno = step.ec.category() == beast::system_category() ? step.ec.value() : EPROTO;
  spdlog::debug("TLS write failed: {}", step.ec ? step.ec.message() : "renegotiation");
  return -1;
}

void Transport::close_notify() {
  if (!ssl_ || !socket_.is_open() || !SSL_is_init_finished(ssl_.get())) return;
  ERR_clear_error();
  SSL_shutdown(ssl_.get());
  ERR_clear_error();
}

void Transport::shutdown_send() {
  close_notify();
  beast::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace meshd
