"""The README's role table is the code's (accounts.team.ROLE_TABLE): it cannot drift."""

from pathlib import Path

from accounts.team import readme_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_role_table_is_generated_from_the_code_table():
    # given the README
    text = README.read_text()
    # when its role table is read
    block = text.split("<!-- role-table:start -->\n")[1].split("\n<!-- role-table:end -->")[0]
    # then it is exactly what the code table generates
    assert block == readme_table()
