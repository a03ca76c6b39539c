// The Unity sample scene's script: put it on a GameObject, set Address and Token in the
// Inspector. The network runs on the client's threads; Update() drains what arrived, so
// every Unity object is touched on the main thread only. Needs the generated Messages.cs
// (longlink-codegen --lang csharp --namespace Chat) in the project.
using Chat;
using Longlink;
using UnityEngine;

public class ChatClient : MonoBehaviour
{
    public string Address = "ws://127.0.0.1:3653/";
    public string Token = "";
    public ulong Room = 1;

    Client client;

    void Start()
    {
        client = Client.Connect(new ClientOptions { Addresses = new[] { Address }, Resume = true }, Messages.Registry);
        client.Reconnecting += e => Debug.Log("reconnecting… " + e.Cause);
        client.Resumed += e => Debug.Log("resumed, nothing lost");
        client.SessionLost += e => { Debug.Log("session lost: " + e.Reason); client.Send(new C2S_UserLogin { Token = Token }); };
        client.Send(new C2S_UserLogin { Token = Token });
        client.Send(new C2S_UpdateWatchRoom { RoomId = Room });
    }

    void Update()
    {
        client.Poll(m =>
        {
            if (m is S2C_Message say) Debug.Log(say.FromUid + ": " + say.Text);
        });
    }

    public void Say(string text)
    {
        client.Send(new C2S_Message { RoomId = Room, Text = text });
    }

    void OnDestroy()
    {
        if (client != null) client.Close();
    }
}
