#pragma once
// Transport: one accepted TCP connection, plain or TLS (--tls-cert and
// --tls-key), under an HttpSession and, after the upgrade, under a
// WsSession. Plain, it is the socket: each call is one branch
// on a null SSL pointer, then exactly what meshd did before TLS existed.
//
// TLS is OpenSSL working straight on the socket's descriptor, not Asio's
// ssl::stream, for two reasons:
//  - memory: an ssl::stream holds two 17 KiB buffers and a BIO pair, 51 KiB
//    per stream before any handshake (measured), while an OpenSSL connection
//    with SSL_MODE_RELEASE_BUFFERS frees its record buffers when idle;
//  - the flush stays one synchronous non-blocking call per batch (SSL_write
//    on the descriptor, as sendmsg is for plain connections), where
//    ssl::stream would need an asynchronous write through its memory BIO.
// The asynchronous operations (handshake, HTTP reads and writes) call
// OpenSSL, wait for the readiness it asks for, and call again; a WebSocket
// session reads with read_some and waits for readiness itself.
//
// Everything happens on the connection's loop thread. Every OpenSSL call
// first checks that the socket is still open: a session may close it (a
// timeout, an abort), and the descriptor number may then belong to a new
// connection.

#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace meshd {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

// What TLS connections are made with: settings, certificate chain and key.
// Every connection's SSL holds its own reference, so replacing the context
// (SIGHUP) never touches a live connection.
using TlsContext = std::shared_ptr<SSL_CTX>;

// Loads a PEM certificate chain (the server's certificate first) and its PEM
// private key into a server context: TLS 1.2 and 1.3 only, ECDHE with AEAD
// ciphers for 1.2 (OpenSSL's defaults for 1.3), no compression, no
// renegotiation, no session resumption. Throws std::runtime_error with one
// line that names the file and the reason. `summary`, when given, receives
// the certificate's subject and expiry (for the log).
TlsContext load_tls_context(const std::string& cert_file, const std::string& key_file,
                            std::string* summary = nullptr);

// A connection's socket, bound to its loop's io_context: that executor is
// one pointer, where tcp::socket's polymorphic one is 56 bytes, held by the
// socket and again by every pending operation on it (an idle WebSocket
// keeps one: RSS per connection).
using Socket = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;

template <class Buffers, bool kWrite>
struct TlsOp;

class Transport {
 public:
  using executor_type = Socket::executor_type;
  using next_layer_type = Socket;

  explicit Transport(Socket&& socket) : socket_(std::move(socket)) {}
  // The server side of a TLS connection with `context`; async_handshake
  // runs the handshake. Throws std::runtime_error when OpenSSL cannot
  // allocate the connection.
  Transport(Socket&& socket, SSL_CTX& context);

  // One step of OpenSSL: bytes moved, or the readiness to wait for, or an error.
  enum class Want : unsigned char { nothing, read, write };
  struct Step {
    std::size_t bytes = 0;
    Want want = Want::nothing;
    beast::error_code ec;
  };

  bool tls() const { return ssl_ != nullptr; }
  executor_type get_executor() noexcept { return socket_.get_executor(); }
  Socket& next_layer() noexcept { return socket_; }
  const Socket& next_layer() const noexcept { return socket_; }

  // Asio AsyncReadStream / AsyncWriteStream (Beast's HTTP reads,
  // HttpSession's responses).
  template <class MutableBufferSequence, class ReadHandler>
  void async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler);
  template <class ConstBufferSequence, class WriteHandler>
  void async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler);
  // TLS only: the server side of the handshake.
  template <class Handler>
  void async_handshake(Handler&& handler);

  // The flush: a non-blocking gather write. Returns the bytes taken, or -1
  // with errno (EAGAIN: wait for writability and call again). With TLS, a
  // call after EAGAIN must start at the same byte and offer at least as
  // many bytes as before: OpenSSL already encrypted a record of them
  // (write_pending()).
  ssize_t write_gather(const iovec* iov, std::size_t count) {
    if (!ssl_) {
      if (count > 1) return plain_write_copied(iov, count);
      msghdr message{};
      message.msg_iov = const_cast<iovec*>(iov);
      message.msg_iovlen = count;
      return ::sendmsg(socket_.native_handle(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    return tls_write_gather(iov, count);
  }
  // WebSocket input: a non-blocking read of what the socket (or OpenSSL)
  // has. want == read: nothing now, wait for readability; want == write:
  // OpenSSL must write first, wait for writability; ec: end of input (eof)
  // or an error.
  Step read_some(void* data, std::size_t size);

  // TLS: bytes offered to the last write_gather that returned EAGAIN, which
  // OpenSSL holds encrypted: they must be offered again, not dropped. 0 when
  // nothing is pending (always, for plain connections).
  std::size_t write_pending() const { return write_retry_; }
  // The same connection (descriptor, TLS state) on another loop's
  // io_context. No operation may be pending. False when it could not move
  // (still on the old loop; closed if the descriptor was lost on the way).
  bool rehome(asio::io_context& ioc);

  // TLS: sends close_notify, best effort (never waits). Plain: nothing.
  void close_notify();
  // close_notify, then the TCP shutdown of the sending side.
  void shutdown_send();

  // True when a handshake failed because the client spoke plain HTTP.
  static bool is_plaintext_http(const beast::error_code& ec);

 private:
  template <class Buffers, bool kWrite>
  friend struct TlsOp;
  Step tls_handshake();
  Step tls_read(void* data, std::size_t size);
  Step tls_write(const void* data, std::size_t size);
  // A per-thread buffer: OpenSSL writes one contiguous buffer, so small
  // pieces are copied together into one record.
  static asio::mutable_buffer write_scratch();
  struct SslFree {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
  };
  ssize_t tls_write_gather(const iovec* iov, std::size_t count);
  // Small frames copied into one buffer, then one send(): cheaper for the
  // kernel than one iovec per frame (measured); above 16 KiB, sendmsg.
  ssize_t plain_write_copied(const iovec* iov, std::size_t count);
  Step finish_step(int result);

  Socket socket_;
  std::unique_ptr<SSL, SslFree> ssl_;  // null: plain
  std::size_t write_retry_ = 0;
};

// The asynchronous TLS operations: one OpenSSL call per attempt, a wait for
// the readiness it asks for between attempts. A result available at once is
// posted, never delivered inside the initiating call. Buffers: a buffer
// sequence to read into or write from, or NoBuffers for the handshake.
struct NoBuffers {};

template <class Buffers, bool kWrite = false>
struct TlsOp {
  Transport& transport;
  Buffers buffers;
  bool waited = false;
  bool completed = false;
  Transport::Step result{};

  Transport::Step attempt() {
    if constexpr (std::is_same_v<Buffers, NoBuffers>) {
      return transport.tls_handshake();
    } else if constexpr (kWrite) {
      const auto scratch = Transport::write_scratch();
      const std::size_t size = asio::buffer_copy(scratch, buffers);
      return size == 0 ? Transport::Step{} : transport.tls_write(scratch.data(), size);
    } else {
      for (const asio::mutable_buffer buffer : beast::buffers_range_ref(buffers))
        if (buffer.size() > 0) return transport.tls_read(buffer.data(), buffer.size());
      return {};
    }
  }

  template <class Self>
  void operator()(Self& self, beast::error_code ec = {}) {
    if (!completed) {
      if (ec) {
        result.ec = ec;
      } else {
        result = attempt();
        if (result.want != Transport::Want::nothing) {
          waited = true;
          transport.next_layer().async_wait(result.want == Transport::Want::read
                                                ? tcp::socket::wait_read
                                                : tcp::socket::wait_write,
                                            std::move(self));
          return;
        }
      }
      if (!waited) {
        completed = true;
        auto executor = transport.get_executor();
        asio::post(executor, std::move(self));
        return;
      }
    }
    if constexpr (std::is_same_v<Buffers, NoBuffers>)
      self.complete(result.ec);
    else
      self.complete(result.ec, result.bytes);
  }
};

template <class MutableBufferSequence, class ReadHandler>
void Transport::async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
  if (!ssl_) {
    socket_.async_read_some(buffers, std::forward<ReadHandler>(handler));
    return;
  }
  asio::async_compose<ReadHandler, void(beast::error_code, std::size_t)>(
      TlsOp<MutableBufferSequence>{*this, buffers}, handler, socket_);
}

template <class ConstBufferSequence, class WriteHandler>
void Transport::async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
  if (!ssl_) {
    socket_.async_write_some(buffers, std::forward<WriteHandler>(handler));
    return;
  }
  asio::async_compose<WriteHandler, void(beast::error_code, std::size_t)>(
      TlsOp<ConstBufferSequence, true>{*this, buffers}, handler, socket_);
}

template <class Handler>
void Transport::async_handshake(Handler&& handler) {
  asio::async_compose<Handler, void(beast::error_code)>(TlsOp<NoBuffers>{*this, {}}, handler,
                                                        socket_);
}

}  // namespace meshd
