// diff(): what a reload changes.

#include <pkit/tool/config.hpp>

#include <boost/test/unit_test.hpp>

#include <filesystem>

using namespace pkit::tool;

namespace {

tree_config tree(const std::string& text) {
  auto r = load_string(text, "t.toml", "/");
  for (const auto& e : r.errors) BOOST_TEST_MESSAGE(e.to_string());
  BOOST_TEST_REQUIRE(r.errors.empty());
  return *r.tree;
}

std::string prog(const std::string& name, const std::string& arg = "10") {
  return "name = \"" + name + "\"\ncommand = [\"sleep\", \"" + arg + "\"]\n";
}

const std::string base = "[[program]]\n" + prog("a") + "[[program]]\n" + prog("b") + "[[group]]\nname = \"g\"\n" +
                         "[[group.program]]\n" + prog("x") + "[[group.program]]\n" + prog("y");

std::string names(const std::vector<reload_plan::change>& changes) {
  std::string out;
  for (const auto& c : changes) {
    for (const auto& g : c.group) out += g + "/";
    out += c.name + (c.is_group ? "(group)" : "") + " ";
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(config_diff)

BOOST_AUTO_TEST_CASE(the_same_file_changes_nothing_even_with_lines_moved) {
  const reload_plan plan = diff(tree(base), tree("# a comment shifts every line\n\n" + base));
  BOOST_TEST(plan.empty());
  BOOST_TEST(plan.unchanged == 4u);
}

BOOST_AUTO_TEST_CASE(added_removed_and_changed_programs_are_told_apart) {
  const std::string next = "[[program]]\n" + prog("a", "20") + "[[program]]\n" + prog("c") +
                           "[[group]]\nname = \"g\"\n[[group.program]]\n" + prog("x") + "[[group.program]]\n" +
                           prog("z");
  const reload_plan plan = diff(tree(base), tree(next));
  BOOST_TEST(names(plan.changed) == "a ");
  BOOST_TEST(names(plan.removed) == "b g/y ");
  BOOST_TEST(names(plan.added) == "c g/z ");
  BOOST_TEST(plan.unchanged == 1u);
  BOOST_TEST(!plan.root_changed);
}

BOOST_AUTO_TEST_CASE(a_group_whose_flags_changed_is_changed_as_a_whole) {
  std::string next = base;
  next.replace(next.find("name = \"g\"\n"), 11, "name = \"g\"\nstrategy = \"one_for_all\"\n");
  const reload_plan plan = diff(tree(base), tree(next));
  BOOST_TEST(names(plan.changed) == "g(group) ");
  BOOST_TEST(plan.added.empty());
  BOOST_TEST(plan.removed.empty());
  BOOST_TEST(plan.unchanged == 2u);
}

BOOST_AUTO_TEST_CASE(a_program_moved_to_another_group_is_removed_and_added) {
  const std::string next = "[[program]]\n" + prog("a") + "[[group]]\nname = \"g\"\n[[group.program]]\n" + prog("x") +
                           "[[group.program]]\n" + prog("y") + "[[group.program]]\n" + prog("b");
  const reload_plan plan = diff(tree(base), tree(next));
  BOOST_TEST(names(plan.removed) == "b ");
  BOOST_TEST(names(plan.added) == "g/b ");
  BOOST_TEST(plan.changed.empty());
  BOOST_TEST(plan.unchanged == 3u);
}

BOOST_AUTO_TEST_CASE(root_settings_and_the_trees_name_need_a_full_restart) {
  BOOST_TEST(diff(tree(base), tree("intensity = 5\n" + base)).root_changed);
  BOOST_TEST(diff(tree(base), tree("[pkit]\nname = \"other\"\n" + base)).root_changed);
  BOOST_TEST(diff(tree(base), tree("[pkit]\ncontrol_socket = \"/tmp/x.sock\"\n" + base)).root_changed);
  const reload_plan plan = diff(tree(base), tree("[pkit]\nshutdown_timeout = \"3s\"\n" + base));
  BOOST_TEST(!plan.root_changed);
  BOOST_TEST(plan.empty());
}

BOOST_AUTO_TEST_CASE(program_equality_ignores_only_the_position) {
  tree_config a = tree(base);
  program_config p = *a.root.children[0].program;
  program_config q = p;
  q.where = {99, 9};
  BOOST_TEST((p == q));
  q.environment["X"] = "1";
  BOOST_TEST(!(p == q));
  q = p;
  q.limits.push_back({7, 1, 2});
  BOOST_TEST(!(p == q));
  q = p;
  q.stdout_spec.keep = 9;
  BOOST_TEST(!(p == q));
  q = p;
  q.stdin_mode = program_config::input::inherit;  // a reload restarts it with its new stdin
  BOOST_TEST(!(p == q));
}

BOOST_AUTO_TEST_SUITE_END()
