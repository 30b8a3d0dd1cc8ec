// The database URL's sources and their precedence (config/config.h): env SLUICE_DATABASE_URL >
// env SLUICE_DATABASE_URL_FILE > $CREDENTIALS_DIRECTORY/database-url > database.url_file >
// database.url. Problems name the source and the file, never the URL.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "config/config.h"

namespace sluice {
namespace {

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_env();
    char tmpl[] = "/tmp/sluice-cred-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    clear_env();
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  static void clear_env() {
    for (const char* v : {"SLUICE_DATABASE_URL", "SLUICE_DATABASE_URL_FILE", "CREDENTIALS_DIRECTORY"}) unsetenv(v);
  }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::vector<std::string> problems(const std::string& text) {
    try {
      parse_config(text, "test.json");
    } catch (const ConfigError& e) {
      return e.problems();
    }
    return {};
  }
  static std::string with_db(const std::string& db) { return R"({"database": )" + db + R"(, "tables": [{"name": "t"}]})"; }

  std::string dir_;
};

TEST_F(CredentialsTest, UrlFromTheConfig) {
  const Config c = parse_config(with_db(R"({"url": "postgresql://cfg@h/db"})"), "t");
  EXPECT_EQ(c.database.url, "postgresql://cfg@h/db");
  EXPECT_EQ(c.database.url_source, "config database.url");
}

TEST_F(CredentialsTest, UrlFileFromTheConfigIsTrimmed) {
  const std::string f = write("url", "  postgresql://file:secret@h/db\n\n");
  const Config c = parse_config(with_db(R"({"url_file": ")" + f + R"("})"), "t");
  EXPECT_EQ(c.database.url, "postgresql://file:secret@h/db");
  EXPECT_EQ(c.database.url_source, "file " + f);
}

TEST_F(CredentialsTest, SystemdCredentialBeatsTheConfigFile) {
  const std::string f = write("url", "postgresql://file@h/db\n");
  write("database-url", "postgresql://credential@h/db\n");
  setenv("CREDENTIALS_DIRECTORY", dir_.c_str(), 1);
  const Config c = parse_config(with_db(R"({"url_file": ")" + f + R"("})"), "t");
  EXPECT_EQ(c.database.url, "postgresql://credential@h/db");
  EXPECT_EQ(c.database.url_source, "credential database-url");
}

TEST_F(CredentialsTest, CredentialsDirectoryWithoutTheFileFallsThrough) {
  setenv("CREDENTIALS_DIRECTORY", dir_.c_str(), 1);  // no database-url in it
  const Config c = parse_config(with_db(R"({"url": "postgresql://cfg@h/db"})"), "t");
  EXPECT_EQ(c.database.url, "postgresql://cfg@h/db");
}

TEST_F(CredentialsTest, EnvFileBeatsTheCredential) {
  write("database-url", "postgresql://credential@h/db");
  const std::string f = write("envfile", "postgresql://envfile@h/db");
  setenv("CREDENTIALS_DIRECTORY", dir_.c_str(), 1);
  setenv("SLUICE_DATABASE_URL_FILE", f.c_str(), 1);
  const Config c = parse_config(with_db(R"({"url": "postgresql://cfg@h/db"})"), "t");
  EXPECT_EQ(c.database.url, "postgresql://envfile@h/db");
  EXPECT_EQ(c.database.url_source, "file " + f);
}

TEST_F(CredentialsTest, EnvUrlBeatsEverything) {
  write("database-url", "postgresql://credential@h/db");
  setenv("CREDENTIALS_DIRECTORY", dir_.c_str(), 1);
  setenv("SLUICE_DATABASE_URL_FILE", write("envfile", "postgresql://envfile@h/db").c_str(), 1);
  setenv("SLUICE_DATABASE_URL", "postgresql://env@h/db", 1);
  const Config c = parse_config(with_db(R"({"url_file": ")" + write("u", "postgresql://file@h/db") + R"("})"), "t");
  EXPECT_EQ(c.database.url, "postgresql://env@h/db");
  EXPECT_EQ(c.database.url_source, "env SLUICE_DATABASE_URL");
}

TEST_F(CredentialsTest, UnreadableOrEmptyFilesAreProblemsThatNameTheFile) {
  const std::string missing = dir_ + "/missing";
  auto p = problems(with_db(R"({"url_file": ")" + missing + R"("})"));
  ASSERT_EQ(p.size(), 1u) << ::testing::PrintToString(p);
  EXPECT_EQ(p[0], "database.url_file: cannot read \"" + missing + "\"");

  const std::string empty = write("empty", " \n");
  p = problems(with_db(R"({"url_file": ")" + empty + R"("})"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], "database.url_file: \"" + empty + "\" is empty");

  setenv("SLUICE_DATABASE_URL_FILE", missing.c_str(), 1);
  p = problems(with_db(R"({"url": "postgresql://cfg@h/db"})"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], "SLUICE_DATABASE_URL_FILE: cannot read \"" + missing + "\"");
  unsetenv("SLUICE_DATABASE_URL_FILE");

  // Two lines: not a URL; the problem does not repeat the content (it may hold a password).
  write("database-url", "postgresql://a:hunter2@h/db\nsecond line\n");
  setenv("CREDENTIALS_DIRECTORY", dir_.c_str(), 1);
  p = problems(with_db(R"({"url": "postgresql://cfg@h/db"})"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], "$CREDENTIALS_DIRECTORY/database-url: \"" + dir_ + "/database-url\" must hold the URL on one line");
  EXPECT_EQ(p[0].find("hunter2"), std::string::npos);
}

TEST_F(CredentialsTest, UrlAndUrlFileTogetherIsAProblem) {
  const auto p = problems(with_db(R"({"url": "postgresql://cfg@h/db", "url_file": ")" + write("u", "x") + R"("})"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], "database.url_file: set either database.url or database.url_file, not both");
}

}  // namespace
}  // namespace sluice
