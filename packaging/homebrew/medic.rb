# Homebrew formula template for medic. Copy it into a tap
# (`brew tap-new you/medic`, Formula/medic.rb), set `url` to a release tarball
# and `sha256` to its checksum (`shasum -a 256 medic-X.Y.Z.tar.gz`), then
# `brew install you/medic/medic` and `brew services start medic`.
class Medic < Formula
  desc "Keeps services alive: probes, restarts, rolls back and alerts with evidence"
  homepage "https://github.com/medic-rs/medic"
  url "https://github.com/medic-rs/medic/archive/refs/tags/v0.1.0.tar.gz"
  sha256 "REPLACE_WITH_THE_RELEASE_TARBALL_SHA256"
  license any_of: ["MIT", "Apache-2.0"]
  head "https://github.com/medic-rs/medic.git", branch: "main"

  depends_on "rust" => :build

  def install
    system "cargo", "install", *std_cargo_args(path: "crates/medic")
    (etc/"medic").mkpath
    etc.install "config/medic.toml" => "medic/medic.toml" unless (etc/"medic/medic.toml").exist?
    (var/"lib/medic").mkpath
  end

  # `brew services start medic` runs it as a LaunchAgent of the current user.
  service do
    run [opt_bin/"medic", "run", "--config", etc/"medic/medic.toml"]
    keep_alive true
    log_path var/"log/medic.log"
    error_log_path var/"log/medic.log"
  end

  test do
    assert_match "medic", shell_output("#{bin}/medic --version")
    system bin/"medic", "config", "check", etc/"medic/medic.toml"
  end
end
